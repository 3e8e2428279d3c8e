"""Explanation jobs over REST: submit, follow, list, fetch the results, cancel.

`POST /v1/models/{name}:explain` with `Prefer: respond-async` submits too (api/routes/v1.py);
every route here carries the same API-key check as the rest of /v1. Included before the /v1
router, so `/v1/models/{name}/jobs` is never taken for a model named `{name}/jobs`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from eaas.api.audit import read
from eaas.api.deps import job_intake, job_runner, job_store, require_key
from eaas.api.errors import Conflict
from eaas.api.jobs.results import jsonl, parquet_file
from eaas.api.jobs.store import CANCELLED, MAX_ITEMS, STATUSES, item_cursor
from eaas.api.schemas import ERROR_RESPONSES
from eaas.explain.errors import BadRequest, NotFound

router = APIRouter(
    prefix="/v1", tags=["jobs"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)
RESULT_FORMATS = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


@router.post("/models/{name:path}/jobs", status_code=202)
async def submit(
    name: str,
    request: Request,
    on_invalid: str = Query("reject", description="reject: a bad instance refuses the job "
                            "(422 naming it); row: it ends with its own error"),
) -> Response:
    """Accept the body of `:explain` as a job; 202 with `Location: /v1/jobs/{id}`."""
    return await job_intake(request).submit(name, request, on_invalid)


@router.get("/jobs")
def list_jobs(
    request: Request,
    model: str | None = Query(None, description="Only this served model's jobs."),
    status: str | None = Query(None, description="queued, running, done, failed or cancelled."),
    limit: int = Query(20, ge=1, le=100, description="Page size."),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
) -> dict[str, Any]:
    """Jobs, newest first, a page at a time."""
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status: must be one of {', '.join(STATUSES)}", field="status")
    if cursor is not None and not _is_id(cursor):
        raise BadRequest("cursor: not a cursor returned by this endpoint", field="cursor")
    found, nxt = read(job_store(request).page, model, status, limit, cursor)
    return {"jobs": found, "next_cursor": nxt}


@router.get("/jobs/{id}")
def get_job(
    id: str,
    request: Request,
    limit: int = Query(100, ge=1, le=MAX_ITEMS, description="Instances per page."),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
) -> dict[str, Any]:
    """Status, progress, times, and a page of its instances: each one's explanation id
    (readable at /v1/explanations/{id}) or error."""
    store = job_store(request)
    job = _job(store, id)
    listed, nxt = read(store.items_page, id, item_cursor(cursor), limit)
    return {**job, "items": listed, "next_cursor": nxt}


@router.get("/jobs/{id}/results")
async def results(
    id: str, request: Request, format: str = Query("jsonl", description="jsonl or parquet")
) -> Response:
    """One row per instance, in order: index, status, error, explanation_id, then the
    Explanation fields (null where the instance has no explanation yet or ended with an error)."""
    if format not in RESULT_FORMATS:
        raise BadRequest("format: must be jsonl or parquet", field="format")
    store = job_store(request)
    await asyncio.to_thread(_job, store, id)
    disposition = {"Content-Disposition": f'attachment; filename="job-{id}.{format}"'}
    if format == "jsonl":
        return StreamingResponse(jsonl(store, id), media_type=RESULT_FORMATS[format],
                                 headers=disposition)  # fmt: skip
    path = await asyncio.to_thread(read, parquet_file, store, id)
    return FileResponse(path, media_type=RESULT_FORMATS[format], headers=disposition,
                        background=BackgroundTask(os.remove, path))  # fmt: skip


@router.delete("/jobs/{id}")
async def cancel(id: str, request: Request) -> dict[str, Any]:
    """Cancel a queued or running job: its work stops within one forward batch, and its
    instances not explained yet end as cancelled. 409 when the job has already ended."""
    store = job_store(request)
    keep = request.app.state.settings.store_inputs
    job = await asyncio.to_thread(read, store.cancel, id, keep) if _is_id(id) else None
    if job is None:
        raise NotFound("no job with this id")
    runner = job_runner(request)
    if runner is not None:
        runner.cancelled_here(id)
    if job["status"] != CANCELLED:
        raise Conflict(f"job is {job['status']}: only a queued or running job can be cancelled")
    return job


def _job(store: Any, id_: str) -> dict[str, Any]:
    job: dict[str, Any] | None = read(store.get, id_) if _is_id(id_) else None
    if job is None:
        raise NotFound("no job with this id")
    return job


def _is_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)
