"""Jobs are kept: a service killed with SIGKILL mid-job resumes it when it starts again, and
every instance ends with exactly one explanation (none lost, none doubled); a 10,000-row job;
retention. Real `eaas serve` processes and a real SQLite store (PostgreSQL: test_audit_pg.py)."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import numpy as np
import pandas as pd
import sqlalchemy as sa

from tests.api.conftest import live_server, serve_process
from tests.api.test_audit import rows
from tests.api.test_jobs import SLOW, same, wait

N_KILLED = 200  # about 30 ms each: the job outlives two restarts


def kill_mid_job_and_resume(store_url: str, model: str) -> None:
    """Submit, SIGKILL the service once some instances are done; start it again (it resumes the
    job once the lease has run out) and SIGTERM it (it hands the job back); start it a third
    time and check the job's instances and the store's explanations one by one."""
    env = {"EAAS_STORE_URL": store_url, "EAAS_JOB_LEASE_S": "2", "EAAS_JOB_POLL_S": "0.2",
           "EAAS_MODELS": model}  # fmt: skip
    inst = rows(N_KILLED, 4.0)
    name = model.split("/")[0]
    with serve_process(env) as client:
        res = client.post(f"/v1/models/{name}/jobs",
                          json={"instances": inst, "parameters": {**SLOW, "seed": 9}})  # fmt: skip
        assert res.status_code == 202, res.text
        job_id = res.json()["id"]
        deadline = time.monotonic() + 60
        while (done := client.get(f"/v1/jobs/{job_id}").json()["instances"]["done"]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(client.proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        client.proc.wait(10)  # type: ignore[attr-defined]
    assert done < N_KILLED, "the job ended before the kill: make it slower"
    with serve_process(env) as client:  # SIGTERM now: the job is handed back at once
        wait_done_above(client, job_id, done)
        client.close()  # uvicorn drains open connections before the app shuts down
        client.proc.terminate()  # type: ignore[attr-defined]
        # uvicorn re-raises the signal after its graceful shutdown: -15 is a clean exit
        assert client.proc.wait(30) in (0, -signal.SIGTERM)  # type: ignore[attr-defined]
    assert owner_and_status(store_url, job_id) == (None, "queued")
    with serve_process(env) as client:
        job = wait(client, job_id, timeout=180)
        assert job["instances"] == {"total": N_KILLED, "done": N_KILLED, "failed": 0,
                                    "cancelled": 0, "pending": 0}  # fmt: skip
        lines = [json.loads(x) for x in
                 client.get(f"/v1/jobs/{job_id}/results").text.splitlines()]  # fmt: skip
        sync = client.post(f"/v1/models/{name}:explain",
                           json={"instances": inst[:5], "parameters": {**SLOW, "seed": 9}})
        for line, exp in zip(lines, sync.json()["explanations"], strict=False):
            same(line, exp)  # the same numbers before and after the kill
    each_once(store_url, job_id, inst, lines)


def each_once(store_url: str, job_id: str, inst: list, lines: list[dict]) -> None:
    """Every instance of the job has exactly one explanation, of its own input, and the store
    holds exactly those for the job: none lost, none doubled."""
    assert [x["index"] for x in lines] == list(range(len(inst)))
    ids = [x["explanation_id"] for x in lines]
    assert all(ids) and len(set(ids)) == len(inst)
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT id, input FROM eaas_explanations WHERE request_id = :j"), {"j": job_id}
        ).fetchall()  # fmt: skip
    engine.dispose()
    assert sorted(r.id for r in stored) == sorted(ids)  # none lost, none doubled
    by_id = {r.id: json.loads(r.input) for r in stored}
    assert [by_id[i] for i in ids] == inst


def wait_done_above(client: httpx.Client, job_id: str, done: int) -> None:
    """The restarted service has taken the job over and explained more of it."""
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{job_id}").json()["instances"]["done"] <= done:
        assert time.monotonic() < deadline, "the job was not resumed"
        time.sleep(0.05)


def owner_and_status(store_url: str, job_id: str) -> tuple[str | None, str]:
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT owner, status FROM eaas_jobs WHERE id = :j"),
                           {"j": job_id}).first()  # fmt: skip
    engine.dispose()
    assert row is not None
    return row.owner, row.status


def test_sigkill_mid_job_then_restart_loses_and_doubles_nothing(slow_mlp, tmp_path):
    kill_mid_job_and_resume(f"sqlite:///{tmp_path / 'explanations.db'}", slow_mlp)


def test_a_10000_row_tabular_job(built, tmp_path):
    rng = np.random.default_rng(0)
    inst = [dict(zip([f"f{i}" for i in range(5)], map(float, r), strict=True))
            for r in rng.normal(size=(10_000, 5)).round(6)]  # fmt: skip
    url = f"sqlite:///{tmp_path / 'explanations.db'}"
    with live_server(models=["tiny-xgb@champion"], store_url=url, job_poll_s=0.2) as client:
        res = client.post("/v1/models/tiny-xgb/jobs", json={"instances": inst}, timeout=120)
        assert res.status_code == 202, res.text
        job = wait(client, res.json()["id"], timeout=300)
        assert job["instances"]["done"] == 10_000 and job["instances"]["failed"] == 0
        got = client.get(f"/v1/jobs/{job['id']}/results", params={"format": "parquet"},
                         timeout=120)  # fmt: skip
        frame = pd.read_parquet(__import__("io").BytesIO(got.content))
        picks = [0, 4_321, 9_999]
        sync = client.post("/v1/models/tiny-xgb:explain",
                           json={"instances": [inst[i] for i in picks]}).json()  # fmt: skip
    assert list(frame["index"]) == list(range(10_000))
    assert frame["explanation_id"].is_unique and (frame["status"] == "done").all()
    assert np.allclose(np.stack(frame["data"].tolist()).astype(float),
                       [[r[f"f{i}"] for i in range(5)] for r in inst])  # fmt: skip
    for i, exp in zip(picks, sync["explanations"], strict=True):
        assert np.array_equal(np.stack(frame["values"][i]), np.asarray(exp["values"]))


def test_ended_jobs_older_than_the_retention_are_purged(tmp_path):
    from eaas.api.audit.store import ExplanationStore
    from eaas.api.jobs.store import JobStore, items, jobs

    store = JobStore(ExplanationStore(f"sqlite:///{tmp_path / 'x.db'}"))
    day = 86_400_000
    for n, (status, finished_days) in enumerate([("done", 40), ("failed", 5), ("queued", None)]):
        now = int(time.time() * 1000)
        row = {"id": f"{n:032x}", "created_ms": now - 50 * day, "request_id": None,
               "model_name": "m", "model_version": "1", "explainer_name": "m-explainer",
               "explainer_version": "1", "method": "tree", "parameters": "{}",
               "on_invalid": "reject", "timeout_s": 60.0}  # fmt: skip
        store.create(row, [{"x": 1}, {"x": 2}], [None, None])
        if finished_days is not None:
            with store.engine.begin() as conn:
                conn.execute(jobs.update().where(jobs.c.id == row["id"]).values(
                    status=status, finished_ms=now - finished_days * day))  # fmt: skip
    assert store.purge(30) == 1 and store.purge(0) == 0
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(jobs.c.id)).scalars().all()
        left_items = conn.execute(sa.select(sa.func.count()).select_from(items)).scalar()
    assert left == [f"{1:032x}", f"{2:032x}"] and left_items == 4  # queued jobs are never purged
    store.engine.dispose()


def test_store_off_means_no_jobs(built):
    with live_server(models=["tiny-xgb@champion"], store=False) as client:
        res = client.post("/v1/models/tiny-xgb/jobs", json={"instances": rows(1)})
        assert res.status_code == 404 and "EAAS_STORE=off" in res.json()["error"]["message"]
        res = client.post("/v1/models/tiny-xgb:explain", headers={"Prefer": "respond-async"},
                          json={"instances": rows(1)})  # fmt: skip
        assert res.status_code == 404
        assert isinstance(client, httpx.Client)


def test_a_job_over_its_time_budget_fails_and_ends_every_instance(slow_mlp, tmp_path):
    url = f"sqlite:///{tmp_path / 'explanations.db'}"
    with live_server(models=[slow_mlp], store_url=url, job_poll_s=0.2,
                     job_timeout_s=1.0) as client:  # fmt: skip
        res = client.post("/v1/models/jobs-mlp/jobs",
                          json={"instances": rows(200), "parameters": SLOW})  # fmt: skip
        assert "preference-applied" not in res.headers  # only when Prefer asked for it
        job = wait(client, res.json()["id"], until=("failed",), timeout=60)
        lines = [json.loads(x) for x in
                 client.get(f"/v1/jobs/{job['id']}/results").text.splitlines()]  # fmt: skip
    assert job["error"] == "job time budget of 1 s exceeded"
    n = job["instances"]
    assert n["pending"] == 0 and n["done"] + n["failed"] == 200 and n["failed"] > 0
    assert [x["status"] for x in lines] == ["done"] * n["done"] + ["error"] * n["failed"]
    assert {x["error"] for x in lines[n["done"]:]} == {"job time budget of 1 s exceeded"}
