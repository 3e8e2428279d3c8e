"""`eaas jobs`: the service's explanation jobs from the command line: list, show, fetch the
results, cancel.

It reads and writes the job tables in the explanation store's database (same settings as the
service: EAAS_STORE_URL or EAAS_HOME), so it needs no running service. Cancelling is a database
update: the process running the job sees it within EAAS_JOB_POLL_S and stops. The results are
the REST results' rows (api/jobs/results.py), and every message matches the REST routes'.
Command-line only: the REST adapter never imports this module.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from eaas.api.audit import store_url
from eaas.api.audit.store import ExplanationStore
from eaas.api.errors import Conflict, Unavailable
from eaas.api.jobs.store import CANCELLED, STATUSES, JobStore
from eaas.api.settings import ServeSettings
from eaas.explain.errors import BadRequest, NotFound

# api/jobs/results.py (pandas, the schema) is imported where rows are written: it doubles the
# start-up time of the commands that only read or update a job

T = TypeVar("T")
FORMATS = ("jsonl", "parquet")


def _fetch(fn: Callable[[JobStore, ServeSettings], T], url: str | None = None) -> T:
    """Run `fn` on the jobs of the configured store; a database that does not answer is one
    clear error, not a traceback (as `eaas explanations`)."""
    settings = ServeSettings()
    store = ExplanationStore(url or store_url(settings), store_inputs=settings.store_inputs)
    try:
        return fn(JobStore(store), settings)
    except SQLAlchemyError as exc:
        raise Unavailable(f"explanation store unavailable ({type(exc).__name__})") from None
    finally:
        store.engine.dispose()


def _found(job: dict[str, Any] | None) -> dict[str, Any]:
    if job is None:
        raise NotFound("no job with this id")
    return job


def line(job: dict[str, Any]) -> str:
    """One job on one line: id, status, model, progress, created time."""
    n, m = job["instances"], job["model"]
    ended = f"{n['failed']} failed" + (f", {n['cancelled']} cancelled" if n["cancelled"] else "")
    return (f"{job['id']}  {job['status']:<9}  {m['name']}/{m['version']}  "
            f"{n['done']}/{n['total']} ({ended})  {job['created_at']}")  # fmt: skip


def list_jobs(model: str | None = None, status: str | None = None, limit: int = 20,
              url: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The newest `limit` jobs, newest first, optionally of one model and/or status."""
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status: must be one of {', '.join(STATUSES)}", field="status")
    if limit < 1:
        raise BadRequest("limit: must be at least 1", field="limit")
    found, _ = _fetch(lambda jobs, _s: jobs.page(model, status, limit), url)
    return found


def show(job_id: str, url: str | None = None) -> dict[str, Any]:
    """The job as `GET /v1/jobs/{id}` shows it, without its page of instances."""
    return _found(_fetch(lambda jobs, _s: jobs.get(job_id), url))


def cancel(job_id: str, url: str | None = None) -> dict[str, Any]:
    """Cancel a queued or running job; its instances not explained yet end as cancelled.
    A cancelled job stays cancelled (no error, as the REST DELETE); any other ended job is a
    conflict."""

    def run(jobs: JobStore, settings: ServeSettings) -> dict[str, Any] | None:
        # the inputs follow the service's rule: cleared at the end unless they are kept
        return jobs.cancel(job_id, settings.store_inputs)

    job = _found(_fetch(run, url))
    if job["status"] != CANCELLED:
        raise Conflict(f"job is {job['status']}: only a queued or running job can be cancelled")
    return job


def results(job_id: str, fmt: str = "jsonl", output: str | Path | None = None,
            url: str | None = None) -> int:  # fmt: skip
    """Write the job's result rows (JSON Lines to stdout or `output`, or Parquet to `output`);
    the number of rows written."""
    if fmt not in FORMATS:
        raise BadRequest("format: must be jsonl or parquet", field="format")
    out = None if output is None else Path(output).expanduser()
    if fmt == "parquet" and (out is None or out.suffix != ".parquet"):
        raise BadRequest("output: parquet needs --output FILE.parquet", field="output")

    def write(jobs: JobStore, _s: ServeSettings) -> int:
        total = int(_found(jobs.get(job_id))["instances"]["total"])  # before any file exists
        if out is None:
            _jsonl_stdout(jobs, job_id)
            return total
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            _parquet(jobs, job_id, out)
        else:
            from eaas.api.jobs.results import jsonl

            with out.open("wb") as f:
                for chunk in jsonl(jobs, job_id):
                    f.write(chunk)
        return total  # one row per instance, every instance

    return _fetch(write, url)


def _jsonl_stdout(jobs: JobStore, job_id: str) -> None:
    from eaas.api.jobs.results import jsonl

    sys.stdout.flush()
    try:
        for chunk in jsonl(jobs, job_id):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted; no error, no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's last flush fails quietly


def _parquet(jobs: JobStore, job_id: str, out: Path) -> None:
    from eaas.api.jobs.results import parquet_file

    path = parquet_file(jobs, job_id)
    try:
        shutil.move(path, out)  # may cross file systems (the temp dir): a copy, then removal
    finally:
        if os.path.exists(path):
            os.remove(path)
