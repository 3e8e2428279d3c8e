"""The explanation store (audit trail): every returned explanation stored, retrievable and
replayable. The SQL code is `store.py`; its REST routes and review pages are in `api/routes/`.

`open_store` builds the store from the settings (None when EAAS_STORE=off); `record` is the one
call the data plane makes: it assigns the ids and enqueues, never touching the database. `read`
and `parse_time` are the rules every reader (routes, pages, `eaas explanations`) shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from eaas.api.audit.store import ExplanationStore, Pending
from eaas.api.errors import Unavailable
from eaas.explain.errors import BadRequest, NotFound

__all__ = [
    "ExplanationStore", "open_store", "parse_time", "pending", "read", "record", "store_url"
]


def store_url(settings: Any) -> str:
    """EAAS_STORE_URL, else SQLite under EAAS_HOME (created)."""
    if settings.store_url:
        return settings.store_url
    home = settings.home_dir
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'explanations.db'}"


def open_store(settings: Any, registry: Any) -> ExplanationStore | None:
    """The started store, with its drop counter in the app's metrics registry; None when off."""
    dropped = Counter(
        "eaas_store_dropped",
        "Explanations that could not be stored (queue full or database down)",
        registry=registry,
    )
    if not settings.store:
        return None
    store = ExplanationStore(
        store_url(settings),
        store_inputs=settings.store_inputs,
        retention_days=settings.store_retention_days,
        on_drop=dropped.inc,
        queue_size=settings.store_queue,
    )
    store.start()
    return store


def record(
    store: ExplanationStore | None,
    request_id: str | None,
    loaded: Any,
    instances: list[Any],
    params: dict[str, Any],
    out: list[dict[str, Any]],
) -> list[str] | None:
    """Ids for the returned explanations, queued for the writer; None when the store is off."""
    if store is None:
        return None
    items = pending(store, request_id, loaded, instances, params, out)
    store.submit(items)
    return [p.id for p in items]


def pending(
    store: ExplanationStore,
    request_id: str | None,
    loaded: Any,
    instances: list[Any],
    params: dict[str, Any],
    out: list[dict[str, Any]],
) -> list[Pending]:
    """The explanations to store, with new ids and the parameters the engine used (a request's,
    queued by `record`; a job's, committed with its progress)."""
    now = int(time.time() * 1000)
    explainer = loaded.explainer
    effective = {**explainer["params"], **params}  # what the engine used, seed included
    ids = store.new_ids(len(out), now)
    return [
        Pending(i, now, request_id, loaded.model, explainer, effective, inst, exp)
        for i, inst, exp in zip(ids, instances, out, strict=True)
    ]


def read(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A store read; a database that does not answer is a 503, not a 500."""
    try:
        return fn(*args, **kwargs)
    except SQLAlchemyError:
        raise Unavailable("explanation store unavailable", retry_after=5) from None


def read_one(store: ExplanationStore, id_: str) -> dict[str, Any]:
    """One stored explanation by id; 404 when there is none (the same for JSON and pages)."""
    rec: dict[str, Any] | None = read(store.get, id_)
    if rec is None:
        raise NotFound("no stored explanation with this id")
    return rec


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
