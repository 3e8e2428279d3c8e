"""Explanation jobs on a real uvicorn with a real SQLite store: submit -> poll -> fetch for a
tabular and a text model, the checks at submission, cancel, keys on every route, metrics, the
review page and the numbers equal to synchronous requests."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.api.conftest import SERVED, live_server, metric
from tests.api.test_audit import rows

KEY = "jobs-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = ["good movie", "a bad and dull film", "great acting but a weak plot", "fine"]
SLOW = {"max_evals": 20000, "tolerance": 0.0}  # jobs-mlp (conftest `slow_mlp`): ~30 ms a row


@pytest.fixture(scope="module")
def api(built, slow_mlp, tmp_path_factory) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'explanations.db'}"
    with live_server(models=[*SERVED, slow_mlp], api_keys=[KEY], store_url=url, job_poll_s=0.2,
                     job_max_instances=50) as client:  # fmt: skip
        client.headers.update(AUTH)
        yield client


def submit(client: httpx.Client, model: str, instances: list, on_invalid: str | None = None,
           **params) -> httpx.Response:  # fmt: skip
    q = {"on_invalid": on_invalid} if on_invalid else None
    return client.post(f"/v1/models/{model}/jobs", params=q,
                       json={"instances": instances, "parameters": params})  # fmt: skip


def wait(client: httpx.Client, job_id: str, until: tuple[str, ...] = ("done",),
         timeout: float = 120.0) -> dict:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        assert job["status"] in ("queued", "running"), (job["status"], job["error"])
        assert time.monotonic() < deadline, f"job still {job['status']}: {job['instances']}"
        time.sleep(0.1)


def results(client: httpx.Client, job_id: str) -> list[dict]:
    res = client.get(f"/v1/jobs/{job_id}/results", params={"format": "jsonl"})
    assert res.status_code == 200 and res.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in res.text.splitlines()]


def same(a: dict, b: dict) -> None:
    for k in ("prediction", "base_values", "values", "additivity_error", "approximation_error"):
        assert np.array_equal(np.asarray(a[k], float), np.asarray(b[k], float), equal_nan=True), k


def test_tabular_job_submit_poll_fetch_equals_synchronous(api):
    inst = rows(7, 0.3)
    res = submit(api, "tiny-mlp", inst, seed=11)
    assert res.status_code == 202, res.text
    job = res.json()
    assert res.headers["location"] == f"/v1/jobs/{job['id']}" == job["href"]
    assert job["status"] in ("queued", "running") and job["instances"]["total"] == 7
    done = wait(api, job["id"])
    assert done["instances"] == {"total": 7, "done": 7, "failed": 0, "cancelled": 0, "pending": 0}
    assert done["started_at"] <= done["finished_at"] and done["model"]["name"] == "tiny-mlp"
    sync = api.post("/v1/models/tiny-mlp:explain",
                    json={"instances": inst, "parameters": {"seed": 11}}).json()  # fmt: skip
    got = results(api, job["id"])
    assert [r["index"] for r in got] == list(range(7))
    assert all(r["status"] == "done" and r["error"] is None for r in got)
    for r, s in zip(got, sync["explanations"], strict=True):
        same(r, s)
    # each id is a stored explanation, with the job as its request and its input
    first = api.get(f"/v1/explanations/{got[0]['explanation_id']}").json()
    assert first["request_id"] == job["id"] and first["input"] == inst[0]
    assert first["parameters"]["seed"] == 11
    same(first["explanation"], sync["explanations"][0])


def test_listing_pages_through_the_instances(api):
    job = submit(api, "tiny-xgb", rows(5)).json()
    wait(api, job["id"])
    seen, cursor = [], None
    while True:
        q = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/jobs/{job['id']}", params=q).json()
        assert "items" in page, page
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i["index"] for i in seen] == list(range(5))
    assert len({i["explanation_id"] for i in seen}) == 5
    assert api.get(f"/v1/jobs/{job['id']}", params={"cursor": "x"}).status_code == 400


def test_parquet_results_match_the_jsonl(api):
    job = submit(api, "tiny-xgb", rows(3, 1.0)).json()
    wait(api, job["id"])
    res = api.get(f"/v1/jobs/{job['id']}/results", params={"format": "parquet"})
    assert res.status_code == 200
    frame = pd.read_parquet(io.BytesIO(res.content))
    lines = results(api, job["id"])
    assert list(frame["index"]) == [0, 1, 2] and list(frame["status"]) == ["done"] * 3
    assert list(frame["explanation_id"]) == [r["explanation_id"] for r in lines]
    for (_, row), line in zip(frame.iterrows(), lines, strict=True):
        assert np.allclose(np.stack(row["values"]), np.asarray(line["values"]), atol=0, rtol=0)
    assert api.get(f"/v1/jobs/{job['id']}/results",
                   params={"format": "csv"}).status_code == 400  # fmt: skip


def test_text_job_through_prefer_respond_async(api):
    res = api.post("/v1/models/tiny-bert:explain", headers={"Prefer": "respond-async, wait=5"},
                   json={"instances": TEXTS, "parameters": {"seed": 4}})  # fmt: skip
    assert res.status_code == 202, res.text
    assert res.headers["preference-applied"] == "respond-async"
    job = res.json()
    wait(api, job["id"])
    sync = api.post("/v1/models/tiny-bert:explain",
                    json={"instances": TEXTS, "parameters": {"seed": 4}}).json()  # fmt: skip
    got = results(api, job["id"])
    assert [r["features"] for r in got] == [e["features"] for e in sync["explanations"]]
    for r, s in zip(got, sync["explanations"], strict=True):
        same(r, s)


def test_a_bad_instance_is_refused_at_submission_naming_it(api):
    bad = rows(3)
    bad[2]["f1"] = "high"
    res = submit(api, "tiny-xgb", bad)
    assert res.status_code == 422
    assert res.json()["error"]["message"].startswith("instances[2].f1:")
    assert "high" not in res.text  # never echoed
    before = api.get("/v1/jobs", params={"model": "tiny-xgb"}).json()["jobs"]
    assert all(j["instances"]["total"] != 3 or j["status"] == "done" for j in before)


def test_on_invalid_row_ends_the_bad_instance_with_its_error(api):
    bad = rows(4)
    bad[1]["f1"] = "x"
    del bad[3]["f4"]
    job = submit(api, "tiny-xgb", bad, on_invalid="row").json()
    done = wait(api, job["id"])
    assert done["instances"] == {"total": 4, "done": 2, "failed": 2, "cancelled": 0, "pending": 0}
    got = results(api, job["id"])
    assert [r["status"] for r in got] == ["done", "error", "done", "error"]
    assert got[1]["error"].startswith("f1:") and "f4" in got[3]["error"]
    assert got[1]["values"] is None and got[1]["explanation_id"] is None


@pytest.mark.parametrize(
    "query,body,status,field",
    [
        ({}, {"instances": rows(51)}, 413, "instances"),
        ({}, {"instances": rows(1), "parameters": {"top_k": 2}}, 422, "parameters.top_k"),
        ({}, {"instances": rows(1), "parameters": {"seed": -1}}, 422, "parameters.seed"),
        ({"on_invalid": "skip"}, {"instances": rows(1)}, 400, "on_invalid"),
        ({}, {"rows": []}, 422, "rows"),
    ],
)
def test_bad_submissions_name_the_field(api, query, body, status, field):
    res = api.post("/v1/models/tiny-xgb/jobs", params=query, json=body)
    assert res.status_code == status, res.text
    assert res.json()["error"]["message"].startswith(f"{field}:")


def test_cancel_stops_the_work_and_ends_the_rest(api):
    job = submit(api, "jobs-mlp", rows(50, 2.0), **SLOW).json()
    wait(api, job["id"], until=("running",))
    deadline = time.monotonic() + 60
    while api.get(f"/v1/jobs/{job['id']}").json()["instances"]["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    res = api.delete(f"/v1/jobs/{job['id']}")
    assert res.status_code == 200 and res.json()["status"] == "cancelled"
    at_cancel = res.json()["instances"]
    assert 0 < at_cancel["done"] < 50 and at_cancel["pending"] == at_cancel["failed"] == 0
    assert at_cancel["done"] + at_cancel["cancelled"] == 50
    time.sleep(1.0)  # the runner has stopped: nothing more is explained or stored
    after = api.get(f"/v1/jobs/{job['id']}").json()
    assert after["instances"] == at_cancel and after["status"] == "cancelled"
    got = results(api, job["id"])
    assert len(got) == 50
    assert {r["status"] for r in got[at_cancel["done"]:]} == {"cancelled"}
    assert all(r["error"] == "job cancelled" for r in got if r["status"] == "cancelled")
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 200  # cancelled stays cancelled
    done = submit(api, "tiny-xgb", rows(1)).json()
    wait(api, done["id"])
    res = api.delete(f"/v1/jobs/{done['id']}")
    assert res.status_code == 409 and res.json()["error"]["code"] == "conflict"


def test_jobs_are_listed_by_model_and_status(api):
    a = submit(api, "tiny-xgb", rows(1, 5.0)).json()
    wait(api, a["id"])
    listed = api.get("/v1/jobs", params={"model": "tiny-xgb", "status": "done",
                                         "limit": 1}).json()  # fmt: skip
    assert listed["jobs"][0]["id"] == a["id"] and listed["next_cursor"] == a["id"]
    older = api.get("/v1/jobs", params={"model": "tiny-xgb", "cursor": a["id"]}).json()
    assert older["jobs"] and all(j["id"] < a["id"] for j in older["jobs"])
    assert all(j["model"]["name"] == "tiny-bert"
               for j in api.get("/v1/jobs", params={"model": "tiny-bert"}).json()["jobs"])
    assert api.get("/v1/jobs", params={"status": "lost"}).status_code == 400
    assert api.get("/v1/jobs/" + "0" * 32).status_code == 404
    assert api.get("/v1/jobs/nope/results").status_code == 404
    assert api.delete("/v1/jobs/" + "f" * 32).status_code == 404


def test_every_job_route_needs_the_key(api):
    job = submit(api, "tiny-xgb", rows(1)).json()
    anon = httpx.Client(base_url=str(api.base_url))
    calls = [
        ("POST", "/v1/models/tiny-xgb/jobs", {"instances": rows(1)}),
        ("GET", "/v1/jobs", None),
        ("GET", f"/v1/jobs/{job['id']}", None),
        ("GET", f"/v1/jobs/{job['id']}/results", None),
        ("DELETE", f"/v1/jobs/{job['id']}", None),
    ]
    for method, path, body in calls:
        assert anon.request(method, path, json=body).status_code == 401, path
    res = anon.post("/v1/models/tiny-xgb:explain", headers={"Prefer": "respond-async"},
                    json={"instances": rows(1)})  # fmt: skip
    assert res.status_code == 401
    anon.close()


def test_metrics_count_jobs_and_instances(api):
    before = metric(api, "eaas_job_instances_total", result="done")
    job = submit(api, "tiny-xgb", rows(4, 3.0)).json()
    wait(api, job["id"])
    assert metric(api, "eaas_job_instances_total", result="done") == before + 4
    text = api.get("/metrics").text
    assert 'eaas_jobs{status="queued"}' in text and 'eaas_jobs{status="running"}' in text
