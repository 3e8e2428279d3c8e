"""The explanation store: every served explanation, kept in a SQL database through SQLAlchemy.

Writes never run on the request path: the route enqueues a `Pending` (ids already assigned) and
one writer thread batches them into the database. A full queue or a database that is down drops
the records, counts them (`eaas_store_dropped_total`) and logs at most once a minute. The same
thread deletes rows older than the retention period. Reads (`get`, `page`) run in request threads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from eaas.explain.errors import BadRequest

log = logging.getLogger("eaas.audit")
SCHEMA_VERSION = 1
MAX_PAGE = 100
DAY_MS = 86_400_000

meta = sa.MetaData()
explanations = sa.Table(
    "eaas_explanations",
    meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False, index=True),
    sa.Column("request_id", sa.String(64)),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("explainer_name", sa.String(256), nullable=False),
    sa.Column("explainer_version", sa.String(32), nullable=False),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),  # JSON, the effective ones (seed included)
    sa.Column("seed", sa.BigInteger),
    sa.Column("input", sa.Text),  # JSON; NULL when only the hash is kept
    sa.Column("input_sha256", sa.String(64), nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),  # JSON, never truncated by top_k
    sa.Index("ix_eaas_explanations_model", "model_name", "created_ms", "id"),
)
store_meta = sa.Table(
    "eaas_store_meta",
    meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)


def new_id(now_ms: int | None = None) -> str:
    """32 hex chars: 12 of milliseconds then 20 random, so ids sort by time like a ULID."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{ms:012x}{secrets.token_hex(10)}"


def input_digest(instance: Any) -> str:
    return hashlib.sha256(json.dumps(instance, sort_keys=True).encode()).hexdigest()


@dataclass
class Pending:
    """One explanation to persist; serialized by the writer, not by the request."""

    id: str
    created_ms: int
    request_id: str | None
    model: dict[str, str]
    explainer: dict[str, Any]
    parameters: dict[str, Any]
    instance: Any
    explanation: dict[str, Any]

    def row(self, store_inputs: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_ms": self.created_ms,
            "request_id": self.request_id,
            "model_name": self.model["name"],
            "model_version": str(self.model["version"]),
            "explainer_name": self.explainer["name"],
            "explainer_version": str(self.explainer["version"]),
            "method": self.explainer["method"],
            "parameters": json.dumps(self.parameters, sort_keys=True),
            "seed": self.parameters.get("seed"),
            "input": json.dumps(self.instance) if store_inputs else None,
            "input_sha256": input_digest(self.instance),
            "explanation": json.dumps(self.explanation),
        }


def to_record(row: Any) -> dict[str, Any]:
    """A stored row as the API shows it."""
    m = row._mapping
    return {
        "id": m["id"],
        "created_at": iso(m["created_ms"]),
        "request_id": m["request_id"],
        "model": {"name": m["model_name"], "version": m["model_version"]},
        "explainer": {
            "name": m["explainer_name"],
            "version": m["explainer_version"],
            "method": m["method"],
        },
        "parameters": json.loads(m["parameters"]),
        "seed": m["seed"],
        "input": None if m["input"] is None else json.loads(m["input"]),
        "input_stored": m["input"] is not None,
        "input_sha256": m["input_sha256"],
        "explanation": json.loads(m["explanation"]),
    }


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def make_engine(url: str) -> sa.Engine:
    kw: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kw["connect_args"] = {"connect_timeout": 3}  # a dead server fails fast, not in minutes
    engine = sa.create_engine(url, **kw)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def encode_cursor(created_ms: int, id_: str) -> str:
    return base64.urlsafe_b64encode(f"{created_ms}:{id_}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ms, id_ = raw.split(":", 1)
        if len(id_) != 32 or not all(c in "0123456789abcdef" for c in id_):
            raise ValueError
        return int(ms), id_
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("cursor: not a cursor returned by this endpoint", field="cursor") from None


class ExplanationStore:
    """Owns the engine, the bounded queue and the writer thread."""

    def __init__(
        self,
        url: str,
        *,
        store_inputs: bool = True,
        retention_days: int = 90,
        on_drop: Callable[[int], None] = lambda n: None,
        queue_size: int = 10_000,
        batch_size: int = 256,
        purge_every_s: float = 3600.0,
    ) -> None:
        self.url, self.store_inputs, self.retention_days = url, store_inputs, retention_days
        self.engine = make_engine(url)
        self.queue: queue.Queue[Pending | None] = queue.Queue(queue_size)
        self.batch_size, self.purge_every_s, self.on_drop = batch_size, purge_every_s, on_drop
        self.schema_ready = False
        self.dropped = 0
        self._last_log = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_id = (0, 0)  # (ms, random part) of the newest id handed out

    def new_ids(self, n: int, now_ms: int) -> list[str]:
        """n ids, strictly increasing (within a millisecond too), so pages list a request's
        explanations in reverse instance order and never interleave two of them."""
        with self._lock:
            ms, rnd = self._last_id
            if now_ms > ms:
                ms, rnd = now_ms, secrets.randbits(79)  # headroom: increments never overflow
            ids = []
            for _ in range(n):
                rnd += 1
                ids.append(f"{ms:012x}{rnd:020x}")
            self._last_id = (ms, rnd)
        return ids

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; it creates the schema first, off the event loop."""
        self._thread = threading.Thread(target=self._loop, name="eaas-audit-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued (bounded wait), then stop the writer and the pool."""
        if self._thread is not None:
            try:
                self.queue.put(None, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)
        self.engine.dispose()

    def ensure_schema(self) -> None:
        if self.schema_ready:
            return
        meta.create_all(self.engine)
        with self.engine.begin() as conn:
            got = conn.execute(
                sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")
            ).scalar()
            if got is None:
                conn.execute(store_meta.insert().values(key="schema_version",
                                                        value=str(SCHEMA_VERSION)))  # fmt: skip
            elif int(got) > SCHEMA_VERSION:
                raise RuntimeError(f"store schema {got} is newer than this eaas ({SCHEMA_VERSION})")
        self.schema_ready = True

    def schema_version(self) -> int | None:
        with self.engine.connect() as conn:
            got = conn.execute(
                sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")
            ).scalar()
        return None if got is None else int(got)

    # --- writing -------------------------------------------------------------------------

    def submit(self, items: list[Pending]) -> None:
        """Enqueue without blocking; what does not fit is dropped and counted."""
        for i, item in enumerate(items):
            try:
                self.queue.put_nowait(item)
            except queue.Full:
                self._drop(len(items) - i, "explanation store queue is full")
                return

    def write(self, items: list[Pending]) -> None:
        """Insert now (the writer thread's call; also used by tests and tools)."""
        self.ensure_schema()
        with self.engine.begin() as conn:
            conn.execute(explanations.insert(), [p.row(self.store_inputs) for p in items])

    def _loop(self) -> None:
        try:
            self.ensure_schema()
        except (SQLAlchemyError, RuntimeError) as exc:  # served anyway; retried with each batch
            self._warn(f"explanation store unavailable at start ({type(exc).__name__})")
        next_purge = 0.0
        while True:
            if time.monotonic() >= next_purge:
                self._purge_quietly()
                next_purge = time.monotonic() + self.purge_every_s
            try:
                first = self.queue.get(timeout=1.0)
            except queue.Empty:
                continue
            batch, stop = ([first] if first is not None else []), first is None
            while not stop and len(batch) < self.batch_size:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                stop = nxt is None
                if nxt is not None:
                    batch.append(nxt)
            if batch:
                try:
                    self.write(batch)
                except (SQLAlchemyError, OSError, RuntimeError) as exc:
                    self._drop(len(batch), f"explanation store write failed: {type(exc).__name__}")
            if stop:
                return

    def _drop(self, n: int, why: str) -> None:
        with self._lock:
            self.dropped += n
        self.on_drop(n)
        self._warn(f"{why}; {self.dropped} explanations not stored so far")

    def _warn(self, msg: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= 60 or self._last_log == 0.0:  # once a minute at most
            self._last_log = now
            log.warning(msg)

    # --- retention -----------------------------------------------------------------------

    def purge(self, now_ms: int | None = None) -> int:
        """Delete rows older than the retention period; 0 days keeps everything."""
        if self.retention_days <= 0:
            return 0
        self.ensure_schema()
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        cutoff = now_ms - self.retention_days * DAY_MS
        with self.engine.begin() as conn:
            res = conn.execute(explanations.delete().where(explanations.c.created_ms < cutoff))
        if res.rowcount:
            log.info("retention: deleted %d explanations older than %d days",
                     res.rowcount, self.retention_days)  # fmt: skip
        return int(res.rowcount or 0)

    def _purge_quietly(self) -> None:
        try:
            self.purge()
        except (SQLAlchemyError, OSError, RuntimeError) as exc:
            self._warn(f"retention purge failed: {type(exc).__name__}")

    # --- reading -------------------------------------------------------------------------

    def get(self, id_: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(explanations).where(explanations.c.id == id_)).first()
        return None if row is None else to_record(row)

    def page(
        self,
        model: str,
        version: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; the cursor is opaque to callers (time and id of the last row)."""
        t = explanations
        q = sa.select(t).where(t.c.model_name == model)
        if version is not None:
            q = q.where(t.c.model_version == str(version))
        if since_ms is not None:
            q = q.where(t.c.created_ms >= since_ms)
        if until_ms is not None:
            q = q.where(t.c.created_ms < until_ms)
        if cursor:
            c_ms, c_id = decode_cursor(cursor)
            q = q.where(sa.or_(t.c.created_ms < c_ms,
                               sa.and_(t.c.created_ms == c_ms, t.c.id < c_id)))  # fmt: skip
        q = q.order_by(t.c.created_ms.desc(), t.c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(q).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = encode_cursor(rows[-1].created_ms, rows[-1].id) if more and rows else None
        return [to_record(r) for r in rows], nxt
