"""REST reads of the explanation store: one explanation by id, a model's explanations by page.

Included before the /v1 router so `/v1/models/{name}/explanations` is never taken for a model
named `{name}/explanations` by `/v1/models/{name:path}`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from eaas.api.audit import parse_time, read, read_one
from eaas.api.audit.store import MAX_PAGE
from eaas.api.deps import explanation_store, require_key
from eaas.api.schemas import ERROR_RESPONSES
from eaas.explain.errors import BadRequest

router = APIRouter(
    prefix="/v1", tags=["audit"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)


@router.get("/explanations/{id}")
def get_explanation(id: str, request: Request) -> dict[str, Any]:
    """One stored explanation with its input (or its SHA-256) and provenance."""
    return read_one(explanation_store(request), id)


@router.get("/models/{name}/explanations")
def list_explanations(
    name: str,
    request: Request,
    version: str | None = Query(None, description="Only this model version."),
    since: str | None = Query(None, description="ISO 8601; at or after."),
    until: str | None = Query(None, description="ISO 8601; before."),
    limit: int = Query(20, ge=1, le=MAX_PAGE, description="Page size."),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
) -> dict[str, Any]:
    """A model's stored explanations, newest first, a page at a time."""
    if version is not None and not version.isdigit():
        raise BadRequest("version: must be a version number", field="version")
    store = explanation_store(request)  # after the version check: a 400 comes first
    items, nxt = read(
        store.page, name, version, parse_time(since, "since"), parse_time(until, "until"),
        limit, cursor,
    )  # fmt: skip
    return {"model": name, "explanations": items, "next_cursor": nxt}
