"""Audit trail of the service: every returned explanation stored, retrievable and replayable.

`open_store` builds the store from the settings (None when EAAS_STORE=off); `record` is the one
call the explain route makes: it assigns the ids and enqueues, never touching the database.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter

from eaas.api.audit.store import ExplanationStore, Pending

__all__ = ["ExplanationStore", "open_store", "record", "store_url"]


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
    now = int(time.time() * 1000)
    explainer = loaded.explainer
    effective = {**explainer["params"], **params}  # what the engine used, seed included
    ids = store.new_ids(len(out), now)
    items = [
        Pending(i, now, request_id, loaded.model, explainer, effective, inst, exp)
        for i, inst, exp in zip(ids, instances, out, strict=True)
    ]
    store.submit(items)
    return [p.id for p in items]
