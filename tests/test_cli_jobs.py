"""`eaas jobs` on a real SQLite store: the real console script in a subprocess lists, shows,
fetches the results of and cancels jobs written through `JobStore` as the service writes them
(submitted, claimed, committed, finished). Each error is one line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from eaas.api.audit.store import ExplanationStore, Pending, new_id
from eaas.api.jobs.store import JobStore, Outcome, now_ms

pytestmark = pytest.mark.fast

EAAS = str(Path(sys.executable).with_name("eaas"))
ROW = {"f0": 0.5, "f1": -1.0, "f2": 0.25}
OWNER = "test-runner"


@dataclass
class Db:
    url: str
    env: dict[str, str]
    done: str  # tiny-xgb: explained, refused at submission, failed while running
    running: str  # tiny-xgb: one explained, one pending
    queued: str  # tiny-lgbm


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Db:
    return build(tmp_path_factory.mktemp("jobs-cli"))


def build(home: Path) -> Db:
    """Three jobs in a new store, oldest first: done, running, queued."""
    url = f"sqlite:///{home / 'explanations.db'}"
    env = {**os.environ, "EAAS_STORE_URL": url, "EAAS_HOME": str(home)}
    jobs = JobStore(ExplanationStore(url))
    try:
        done = submit(jobs, "tiny-xgb", 3, errors=[None, "instances[1]: refused", None])
        assert jobs.claim(["tiny-xgb"])["id"] == done  # type: ignore[index]
        claim = jobs.take(done, OWNER, 60, 8)
        assert claim is not None and [i for i, _ in claim.todo] == [0, 2]
        assert jobs.commit(claim, OWNER, [Outcome(0, pending=pending("tiny-xgb", 0)),
                                          Outcome(2, error="failed while explaining")])  # fmt: skip
        running = submit(jobs, "tiny-xgb", 2)
        assert jobs.claim(["tiny-xgb"])["id"] == running  # type: ignore[index]
        claim = jobs.take(running, OWNER, 60, 1)
        assert claim is not None and not jobs.commit(
            claim, OWNER, [Outcome(0, pending=pending("tiny-xgb", 0))])
        queued = submit(jobs, "tiny-lgbm", 2)
    finally:
        jobs.engine.dispose()
    return Db(url, env, done, running, queued)


def submit(jobs: JobStore, model: str, n: int, errors: list[str | None] | None = None) -> str:
    """A job as `api/jobs/intake.py` stores it."""
    time.sleep(0.002)  # a distinct millisecond: "newest first" is well defined
    row = {
        "id": jobs.store.new_ids(1, now_ms())[0],
        "created_ms": now_ms(),
        "request_id": "cli-test",
        "model_name": model,
        "model_version": "1",
        "explainer_name": f"{model}-explainer",
        "explainer_version": "1",
        "method": "tree",
        "parameters": json.dumps({"seed": 0}),
        "on_invalid": "row",
        "timeout_s": 60.0,
    }
    inputs = [{k: v + i for k, v in ROW.items()} for i in range(n)]
    return jobs.create(row, inputs, errors or [None] * n)


def pending(model: str, i: int) -> Pending:
    ms = now_ms()
    exp = {"output_names": ["0", "1"], "prediction": [0.25, 0.75], "base_values": [0.5, 0.5],
           "values": [[0.1 * i] * 3, [-0.1 * i] * 3], "features": list(ROW),
           "data": [v + i for v in ROW.values()], "additivity_error": 0.0}  # fmt: skip
    return Pending(new_id(ms), ms, "cli-test", {"name": model, "version": "1"},
                   {"name": f"{model}-explainer", "version": "1", "method": "tree"},
                   {"seed": 0}, {k: v + i for k, v in ROW.items()}, exp)  # fmt: skip


def eaas(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([EAAS, "jobs", *args], env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert "Traceback" not in res.stderr, res.stderr
    return res


def one_error(res: subprocess.CompletedProcess[str], message: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stderr.strip().splitlines() == [f"error: {message}"]


def listed(res: subprocess.CompletedProcess[str]) -> list[list[str]]:
    assert res.returncode == 0, res.stderr
    return [line.split() for line in res.stdout.splitlines()]


def test_list_newest_first_with_filters(db):
    lines = listed(eaas(db.env, "list"))
    assert [ln[:3] for ln in lines] == [[db.queued, "queued", "tiny-lgbm/1"],
                                        [db.running, "running", "tiny-xgb/1"],
                                        [db.done, "done", "tiny-xgb/1"]]  # fmt: skip
    assert lines[2][3:6] == ["1/3", "(2", "failed)"] and lines[2][6].startswith("20")
    assert lines[1][3:6] == ["1/2", "(0", "failed)"]
    xgb = listed(eaas(db.env, "list", "--model", "tiny-xgb", "--limit", "1"))
    assert [ln[0] for ln in xgb] == [db.running]
    assert [ln[0] for ln in listed(eaas(db.env, "list", "--status", "done"))] == [db.done]
    one_error(
        eaas(db.env, "list", "--status", "finished"),
        "status: must be one of queued, running, done, failed, cancelled",
    )


def test_show_is_the_rest_job_without_items(db):
    res = eaas(db.env, "show", db.done)
    assert res.returncode == 0, res.stderr
    job = json.loads(res.stdout)
    assert res.stdout.startswith("{\n  ")  # indented
    assert job["id"] == db.done and job["status"] == "done" and "items" not in job
    assert job["model"] == {"name": "tiny-xgb", "version": "1"}
    assert job["explainer"] == {"name": "tiny-xgb-explainer", "version": "1", "method": "tree"}
    assert job["instances"] == {"total": 3, "done": 1, "failed": 2, "cancelled": 0, "pending": 0}
    assert job["parameters"] == {"seed": 0} and job["on_invalid"] == "row"
    assert job["finished_at"] is not None and job["error"] is None
    one_error(eaas(db.env, "show", "f" * 32), "no job with this id")


def test_results_jsonl_rows_in_order(db):
    res = eaas(db.env, "results", db.done)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["index"], r["status"], r["error"]) for r in rows] == [
        (0, "done", None), (1, "error", "instances[1]: refused"),
        (2, "error", "failed while explaining")]  # fmt: skip
    assert rows[0]["explanation_id"] and rows[0]["values"] == [[0.0] * 3, [-0.0] * 3]
    assert rows[1]["explanation_id"] is None and rows[1]["values"] is None
    out = eaas(db.env, "results", db.running).stdout
    running = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in running] == ["done", "pending"]


def test_results_parquet_same_rows(db, tmp_path):
    out = tmp_path / "sub" / "job.parquet"
    res = eaas(db.env, "results", db.done, "--format", "parquet", "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"3 results -> {out}"
    frame = pd.read_parquet(out)
    assert list(frame["index"]) == [0, 1, 2]
    assert list(frame["status"]) == ["done", "error", "error"]
    jobs = JobStore(ExplanationStore(db.url))
    try:
        stored, _ = jobs.items_page(db.done, 0, 10)
    finally:
        jobs.engine.dispose()
    ids = [None if pd.isna(v) else v for v in frame["explanation_id"]]
    assert ids == [it["explanation_id"] for it in stored] and ids[0] is not None
    assert list(frame["features"][0]) == list(ROW)
    csv = tmp_path / "x.csv"
    one_error(
        eaas(db.env, "results", db.done, "--format", "parquet", "--output", str(csv)),
        "output: parquet needs --output FILE.parquet",
    )
    assert not csv.exists()


def jobs_instances(url: str, job_id: str) -> dict:
    jobs = JobStore(ExplanationStore(url))
    try:
        return jobs.get(job_id)["instances"]  # type: ignore[index]
    finally:
        jobs.engine.dispose()


def test_cancel_queued_then_ended_jobs(tmp_path):
    db = build(tmp_path)  # its own store: the other tests see the queued job as it was
    res = eaas(db.env, "cancel", db.queued)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[:7] == [db.queued, "cancelled", "tiny-lgbm/1", "0/2", "(0",
                                      "failed,", "2"]  # fmt: skip
    assert jobs_instances(db.url, db.queued) == {"total": 2, "done": 0, "failed": 0,
                                                  "cancelled": 2, "pending": 0}  # fmt: skip
    jobs = JobStore(ExplanationStore(db.url))
    try:
        assert jobs.get(db.queued)["status"] == "cancelled"  # type: ignore[index]
        rows = [r for page in jobs.results(db.queued) for r in page]
        assert [(r["status"], r["error"]) for r in rows] == [("cancelled", "job cancelled")] * 2
    finally:
        jobs.engine.dispose()
    one_error(
        eaas(db.env, "cancel", db.done),
        "job is done: only a queued or running job can be cancelled",
    )
    again = eaas(db.env, "cancel", db.queued)  # as the REST DELETE: cancelled stays cancelled
    assert again.returncode == 0 and again.stdout.split()[1] == "cancelled"
    one_error(eaas(db.env, "cancel", "0" * 32), "no job with this id")


def test_a_store_that_does_not_answer_is_one_line(tmp_path):
    env = {**os.environ, "EAAS_STORE_URL": f"sqlite:///{tmp_path / 'missing' / 'x.db'}"}
    one_error(eaas(env, "list"), "explanation store unavailable (OperationalError)")
