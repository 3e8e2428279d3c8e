"""Explanation store on a real uvicorn with a real SQLite database: ids, reads, paging, retention,
auth, the store down, replay (`verify`) for every explainer method, and the review pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from tests.api.conftest import SERVED, free_port, live_server, metric
from tests.reports.browser import assert_rendered, browser, screenshot_dir

KEY = "audit-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MODELS = [*SERVED, "tiny-logistic@champion"]
ROW = {"f0": 0.5, "f1": -1.0, "f2": 0.25, "f3": 1.5, "f4": -0.3}
DAY_MS = 86_400_000
ASIDE = {  # served name -> (copied source, build options): the methods the session does not build
    "audit-mlp-partition": ("tiny-mlp", {"method": "partition", "max_evals": 40, "seed": 3,
                                         "background_size": 10}),
    "audit-mlp-kernel": ("tiny-mlp", {"method": "kernel", "max_evals": 20, "seed": 5,
                                      "background_size": 10}),
    "audit-bert-ig": ("tiny-bert", {"method": "integrated-gradients", "max_evals": 16}),
    "audit-bert-partition": ("tiny-bert", {"method": "text", "max_evals": 30}),
    "audit-bert-kernel": ("tiny-bert", {"method": "text-kernel", "max_evals": 30}),
}  # fmt: skip


def rows(n: int, shift: float = 0.0) -> list[dict[str, float]]:
    return [{k: v + shift + 0.1 * i for k, v in ROW.items()} for i in range(n)]


def old_pending(days: float, model: str = "tiny-xgb"):
    from eaas.api.audit.store import Pending, new_id

    ms = int(time.time() * 1000 - days * DAY_MS)
    exp = {"output_names": ["0", "1"], "prediction": [0.5, 0.5], "base_values": [0.5, 0.5],
           "values": [[0.0] * 5, [0.0] * 5], "features": list(ROW), "data": list(ROW.values()),
           "additivity_error": 0.0}  # fmt: skip
    return Pending(new_id(ms), ms, "old", {"name": model, "version": "1"},
                   {"name": f"{model}-explainer", "version": "1", "method": "tree"},
                   {"max_evals": 1, "seed": 0}, ROW, exp)  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A SQLite store holding two old rows before the service starts (100 and 10 days old)."""
    from eaas.api.audit.store import ExplanationStore

    url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'explanations.db'}"
    store = ExplanationStore(url)
    stale, recent = old_pending(100), old_pending(10)
    store.write([stale, recent])
    store.engine.dispose()
    return url, {"stale": stale.id, "recent": recent.id}


@pytest.fixture(scope="module")
def aside(models) -> dict[str, tuple[str, str]]:
    """Name -> (served ref, explainer URI): a copy of tiny-mlp or tiny-bert version 1 under a name
    of its own per method, so the fixtures' `eaas.explainer` tags and aliases stay as they are."""
    from mlflow.tracking import MlflowClient

    from eaas.explain.build import build_explainer

    client, out = MlflowClient(), {}
    for name, (source, options) in ASIDE.items():
        mv = client.copy_model_version(f"models:/{source}/1", name)
        res = build_explainer(f"models:/{name}/{mv.version}", **options)
        out[name] = (f"{name}/{mv.version}", res.uri)
    return out


@pytest.fixture(scope="module")
def api(built, aside, db) -> Iterator[httpx.Client]:
    url, _ = db
    served = [*MODELS, *(ref for ref, _ in aside.values())]
    with live_server(models=served, api_keys=[KEY], store_url=url,
                     store_retention_days=30) as client:  # fmt: skip
        client.headers.update(AUTH)
        yield client


def explain(client: httpx.Client, model: str, instances: list, **params) -> httpx.Response:
    res = client.post(f"/v1/models/{model}:explain",
                      json={"instances": instances, "parameters": params})  # fmt: skip
    assert res.status_code == 200, res.text
    return res


def stored(client: httpx.Client, id_: str, wait_s: float = 20.0) -> dict:
    """The stored record, once the writer thread has written it (bounded wait)."""
    deadline = time.monotonic() + wait_s
    while True:
        res = client.get(f"/v1/explanations/{id_}")
        if res.status_code == 200 or time.monotonic() > deadline:
            assert res.status_code == 200, res.text
            return res.json()
        time.sleep(0.05)


def test_each_explanation_gets_an_id_and_is_stored_with_its_provenance(api):
    res = explain(api, "tiny-xgb", rows(2), top_k=2)
    body = res.json()
    ids = [e["id"] for e in body["explanations"]]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    assert res.headers["x-explanation-ids"] == ",".join(ids)
    rec = stored(api, ids[1])
    assert rec["id"] == ids[1] and rec["request_id"] == res.headers["x-request-id"]
    assert rec["model"] == body["model"]
    assert {k: rec["explainer"][k] for k in ("name", "version", "method")} == {
        k: body["explainer"][k] for k in ("name", "version", "method")
    }
    assert rec["parameters"] == body["explainer"]["params"]
    assert rec["seed"] == rec["parameters"]["seed"]
    assert rec["input"] == rows(2)[1] and rec["input_stored"] is True
    # the full explanation, not the top_k view the client asked for
    exp = rec["explanation"]
    assert len(exp["features"]) == 5 and exp["prediction"] == body["predictions"][1]
    assert body["explanations"][1]["dropped"] > 0 and exp["truncated"] is False


def test_cached_explanations_get_their_own_id_and_record(api):
    before = metric(api, "eaas_cache_total", result="hit")
    a = explain(api, "tiny-xgb", rows(1, 3.0)).json()["explanations"][0]
    b = explain(api, "tiny-xgb", rows(1, 3.0)).json()["explanations"][0]
    assert metric(api, "eaas_cache_total", result="hit") == before + 1
    assert a["id"] != b["id"]
    ra, rb = stored(api, a["id"]), stored(api, b["id"])
    assert ra["explanation"] == rb["explanation"] and ra["request_id"] != rb["request_id"]


def test_unknown_id_is_a_404_in_the_error_shape_and_reads_need_the_key(api):
    res = api.get("/v1/explanations/" + "0" * 32)
    assert res.status_code == 404
    assert res.json()["error"]["code"] == "not_found" and "0" * 32 not in res.text
    for path in ("/v1/explanations/x", "/v1/models/tiny-xgb/explanations"):
        assert httpx.get(f"{api.base_url}{path}").status_code == 401


def test_model_routes_stay_unambiguous(api):
    assert api.get("/v1/models/tiny-xgb").json()["name"] == "tiny-xgb"
    listed = api.get("/v1/models/tiny-xgb/explanations?limit=1")
    assert listed.status_code == 200 and listed.json()["model"] == "tiny-xgb"
    assert api.get("/v1/models/nope/explanations").json()["explanations"] == []


def test_pages_newest_first_with_an_opaque_cursor(api):
    ids = []
    for i in range(5):  # separate requests: distinct times and request ids
        ids.append(explain(api, "tiny-logistic", rows(1, 10.0 + i)).json()["explanations"][0]["id"])
    stored(api, ids[-1])
    seen, cursor, pages = [], None, 0
    while True:
        q = {"limit": 2, "version": "1", **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/models/tiny-logistic/explanations", params=q).json()
        seen += [e["id"] for e in page["explanations"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1] and pages == 3
    times = [stored(api, i)["created_at"] for i in seen]
    assert times == sorted(times, reverse=True)
    since = stored(api, ids[2])["created_at"]
    got = api.get("/v1/models/tiny-logistic/explanations", params={"since": since}).json()
    assert {e["id"] for e in got["explanations"]} >= set(ids[2:])
    until = api.get("/v1/models/tiny-logistic/explanations", params={"until": "2001-01-01"})
    assert until.json()["explanations"] == []
    assert api.get("/v1/models/tiny-logistic/explanations", params={"version": "9"}).json()[
        "explanations"] == []  # fmt: skip


@pytest.mark.parametrize(
    "query, field, status",
    [("cursor=abc", "cursor", 400), ("since=yesterday", "since", 400),
     ("limit=0", "limit", 422), ("limit=101", "limit", 422), ("version=x", "version", 400)],
)  # fmt: skip
def test_bad_queries_name_the_field(api, query, field, status):
    res = api.get(f"/v1/models/tiny-xgb/explanations?{query}")
    assert res.status_code == status and field in res.json()["error"]["message"]


def test_retention_is_enforced_by_the_service(api, db):
    _, old = db
    deadline = time.monotonic() + 20
    while api.get(f"/v1/explanations/{old['stale']}").status_code != 404:
        assert time.monotonic() < deadline, "the 100-day-old row was not purged"
        time.sleep(0.1)
    assert api.get(f"/v1/explanations/{old['recent']}").status_code == 200  # 10 < 30 days


def test_schema_version_is_recorded(api, db):
    from eaas.api.audit.store import SCHEMA_VERSION, ExplanationStore

    store = ExplanationStore(db[0])
    assert store.schema_version() == SCHEMA_VERSION
    store.engine.dispose()


def test_inputs_off_keeps_only_the_sha256(tmp_path):
    from eaas.api.audit.store import ExplanationStore, input_digest

    store = ExplanationStore(f"sqlite:///{tmp_path / 'e.db'}", store_inputs=False)
    p = old_pending(0)
    store.write([p])
    rec = store.get(p.id)
    raw = sa.select(sa.text("input")).select_from(sa.text("eaas_explanations"))
    with store.engine.connect() as conn:
        assert conn.execute(raw).scalar() is None
    assert rec["input"] is None and rec["input_stored"] is False
    assert rec["input_sha256"] == input_digest(ROW) and len(rec["input_sha256"]) == 64
    assert rec["explanation"]["features"] == list(ROW)


def test_purge_deletes_only_rows_older_than_the_period(tmp_path):
    from eaas.api.audit.store import ExplanationStore

    store = ExplanationStore(f"sqlite:///{tmp_path / 'e.db'}", retention_days=7)
    a, b = old_pending(8), old_pending(6)
    store.write([a, b])
    assert store.purge() == 1
    assert store.get(a.id) is None and store.get(b.id) is not None


def test_store_down_still_serves_and_counts_the_drops(built):
    closed = free_port()  # nothing listens there
    url = f"postgresql+psycopg://eaas@127.0.0.1:{closed}/eaas"
    with live_server(models=["tiny-xgb@champion"], store_url=url) as client:
        res = explain(client, "tiny-xgb", rows(3))
        assert len(res.json()["explanations"]) == 3
        deadline = time.monotonic() + 20
        while metric(client, "eaas_store_dropped_total") < 3:
            assert time.monotonic() < deadline, "drops were not counted"
            time.sleep(0.1)
        got = client.get(f"/v1/explanations/{res.json()['explanations'][0]['id']}")
        assert got.status_code == 503 and got.json()["error"]["code"] == "unavailable"


def test_store_off_gives_no_ids(built):
    with live_server(models=["tiny-xgb@champion"], store=False) as client:
        res = explain(client, "tiny-xgb", rows(1))
        assert "id" not in res.json()["explanations"][0]
        assert "x-explanation-ids" not in res.headers
        assert client.get("/v1/explanations/" + "0" * 32).status_code == 404


CASES = {  # model -> (method, instances, parameters): one per explainer method
    "tiny-xgb": ("tree", rows(2, 0.7), {}),
    "tiny-logistic": ("linear", rows(2, 0.9), {}),
    "tiny-mlp": ("permutation", rows(2, 1.1), {"seed": 7, "max_evals": 29}),  # sampled
    "audit-mlp-partition": ("partition", rows(2, 1.3), {"seed": 11}),
    "audit-mlp-kernel": ("kernel", rows(2, 1.5), {"seed": 13}),  # sampled: 20 < 2**5 coalitions
    "tiny-bert": ("text-permutation", ["the movie was great and fun",
                                       "a dull and boring plot , sadly"], {"max_evals": 30}),
    "audit-bert-partition": ("text", ["a great film"], {}),
    "audit-bert-kernel": ("text-kernel", ["a great film with a dull and boring plot"], {"seed": 3}),
    "audit-bert-ig": ("integrated-gradients", ["a great film", "boring"], {"max_evals": 12}),
}


def test_the_cases_cover_every_method():
    from eaas.explain.engine import METHODS

    assert sorted(method for method, _, _ in CASES.values()) == sorted(METHODS)


@pytest.fixture(scope="module")
def served_ids(api) -> dict[str, list[str]]:
    out = {}
    for model, (_, instances, params) in CASES.items():
        res = explain(api, model, instances, **params)
        out[model] = [e["id"] for e in res.json()["explanations"]]
        stored(api, out[model][-1])
    return out


@pytest.mark.parametrize("model", list(CASES))
def test_verify_recomputes_bit_for_bit_for_each_method(model, served_ids, db, api, built, aside):
    from eaas.explanations import verify

    uris = {**built, **{name: uri for name, (_, uri) in aside.items()}}
    for id_ in served_ids[model]:
        assert stored(api, id_)["explainer"]["method"] == CASES[model][0]
        verdict = verify(id_, url=db[0])
        assert verdict.identical, verdict.differences
        assert verdict.explainer_uri == uris[model]


def test_verify_notices_a_changed_record(api, served_ids, db):
    from eaas.explanations import verify

    id_ = served_ids["tiny-mlp"][0]
    rec = stored(api, id_)
    exp = rec["explanation"]
    exp["values"][1][2] = float(exp["values"][1][2]) + 1e-12
    engine = sa.create_engine(db[0])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE eaas_explanations SET explanation = :e WHERE id = :i"),
                     {"e": json.dumps(exp), "i": id_})  # fmt: skip
    engine.dispose()
    verdict = verify(id_, url=db[0])
    assert not verdict.identical and verdict.differences == ["values differs (max |diff| 1e-12)"]


def test_cli_verify_and_export(served_ids, db, tmp_path):
    import pandas as pd

    env = {**os.environ, "EAAS_STORE_URL": db[0], "PYTHONPATH": str(Path.cwd())}
    cli = [sys.executable, "-m", "eaas.cli", "explanations"]
    id_ = served_ids["tiny-xgb"][0]
    ok = subprocess.run([*cli, "verify", id_], env=env, capture_output=True, text=True,
                        timeout=120)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.startswith(f"identical: {id_}"), ok.stderr
    out = tmp_path / "xgb.parquet"
    exp = subprocess.run([*cli, "export", "--model", "tiny-xgb", "--output", str(out)], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert exp.returncode == 0, exp.stderr
    df = pd.read_parquet(out)
    assert set(served_ids["tiny-xgb"]) <= set(df["id"]) and df["id"].is_unique
    assert df["created_at"].is_monotonic_increasing
    row = df[df["id"] == id_].iloc[0]
    assert list(row["features"]) == list(ROW)
    assert json.loads(row["input"]) == CASES["tiny-xgb"][1][0]
    from eaas.explain.errors import NotFound
    from eaas.explanations import verify

    with pytest.raises(NotFound, match="no stored explanation"):
        verify("f" * 32, url=db[0])


def test_review_pages_link_each_stored_explanation(api, served_ids, tmp_path):
    page = api.get("/ui").text
    id_ = served_ids["tiny-bert"][-1]
    assert f"/ui/explanations/{id_}" in page and "Latest stored explanations" in page
    one = api.get(f"/ui/explanations/{id_}")
    assert one.status_code == 200 and "a dull and boring plot" in one.text
    assert f"eaas explanations verify {id_}" in one.text
    png = api.get(f"/ui/explanations/{id_}/chart.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert api.get("/ui/explanations/" + "0" * 32).status_code == 404
    assert httpx.get(f"{api.base_url}/ui/explanations/{id_}").status_code == 401
    base = str(api.base_url).rstrip("/")
    shots = screenshot_dir(tmp_path)
    tab = served_ids["tiny-xgb"][0]
    with browser() as chrome:
        ui = chrome.open(f"{base}/ui", shots / "ui-stored.png", headers=AUTH)
        detail = chrome.open(f"{base}/ui/explanations/{tab}", shots / "explanation.png",
                             headers=AUTH)  # fmt: skip
    assert "Latest stored explanations" in ui.text and ui.errors == []
    assert_rendered(detail, f"tiny-xgb v1 · explanation {tab}", min_images=1)
    assert "f0" in detail.text and "input SHA-256" in detail.text


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    from eaas.api.audit.store import ExplanationStore

    counted = []
    store = ExplanationStore(f"sqlite:///{tmp_path / 'e.db'}", queue_size=2, on_drop=counted.append)
    store.submit([old_pending(0) for _ in range(5)])  # no writer running: only 2 fit
    assert store.queue.qsize() == 2 and counted == [3] and store.dropped == 3


def test_a_newer_schema_is_not_written_to(tmp_path):
    from eaas.api.audit.store import ExplanationStore, store_meta

    url = f"sqlite:///{tmp_path / 'e.db'}"
    ExplanationStore(url).ensure_schema()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(store_meta.update().values(value="99"))
    engine.dispose()
    with pytest.raises(RuntimeError, match="newer"):
        ExplanationStore(url).write([old_pending(0)])


EXACT, NO_ESTIMATE = {"tree", "linear"}, {"partition", "text", "integrated-gradients"}


@pytest.mark.parametrize("model", list(CASES))
def test_every_method_says_how_far_it_may_be_from_the_shapley_values(model, served_ids, api):
    """approximation_error: 0 for exact methods, standard errors shaped as `values` for sampled
    ones, null where a method estimates none; the same in the store and on the /ui page."""
    method = CASES[model][0]
    for id_ in served_ids[model]:
        exp = stored(api, id_)["explanation"]
        err = exp["approximation_error"]
        if method in NO_ESTIMATE:
            assert err is None and exp["tolerance_met"] is False
        else:
            assert np.shape(err) == np.shape(exp["values"])
            assert (np.max(err) == 0) == (method in EXACT)
            assert exp["tolerance_met"] is True or method not in EXACT
        page = api.get(f"/ui/explanations/{id_}").text
        assert ("not estimated" in page) == (method in NO_ESTIMATE)
        assert ("standard error" in page) == (method not in NO_ESTIMATE)
