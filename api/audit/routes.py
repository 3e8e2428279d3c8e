"""REST reads of the explanation store: one explanation by id, a model's explanations by page.

Included before the /v1 router so `/v1/models/{name}/explanations` is never taken for a model
named `{name}/explanations` by `/v1/models/{name:path}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.exc import SQLAlchemyError

from eaas.api.audit.store import MAX_PAGE, ExplanationStore
from eaas.api.errors import Unavailable
from eaas.explain.errors import BadRequest, NotFound


def _require_key(request: Request) -> None:
    from eaas.api.app import require_key  # api.app includes this router: import at call time

    require_key(request)


router = APIRouter(prefix="/v1", tags=["audit"], dependencies=[Depends(_require_key)])


def audit_store(request: Request) -> ExplanationStore:
    store = getattr(request.app.state, "audit", None)
    if store is None:
        raise NotFound("the explanation store is off (EAAS_STORE=off)")
    return store


def read(fn, *args: Any, **kwargs: Any) -> Any:
    """A store read; a database that does not answer is a 503, not a 500."""
    try:
        return fn(*args, **kwargs)
    except SQLAlchemyError:
        raise Unavailable("explanation store unavailable", retry_after=5) from None


def parse_time(value: str | None, name: str) -> int | None:
    """ISO 8601 date or date-time (no zone: UTC) -> epoch milliseconds."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: not an ISO 8601 date or date-time", field=name) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


@router.get("/explanations/{id}")
def get_explanation(id: str, request: Request) -> dict[str, Any]:
    """One stored explanation with its input (or its SHA-256) and provenance."""
    rec = read(audit_store(request).get, id)
    if rec is None:
        raise NotFound("no stored explanation with this id")
    return rec


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
    store = audit_store(request)
    items, nxt = read(
        store.page, name, version, parse_time(since, "since"), parse_time(until, "until"),
        limit, cursor,
    )  # fmt: skip
    return {"model": name, "explanations": items, "next_cursor": nxt}
