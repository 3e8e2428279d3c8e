"""The job tables and the queries the store's transactions share: `eaas_jobs` (one row per
job), `eaas_job_items` (one per instance), `eaas_job_claims` (one per chunk handed out: who
explains, or explained, which instances). They live in the explanation store's metadata, so
they are created with it, in the same database."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from eaas.api.audit.store import Pending, iso, meta
from eaas.explain.errors import BadRequest

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING)
# an instance: waiting, explained (one stored explanation) or refused/failed (one error)
PENDING, ERROR = "pending", "error"
INSERT_ROWS = 1000  # instances per INSERT at submission
MAX_ITEMS = 1000  # most instances in one page of a job's listing

jobs = sa.Table(
    "eaas_jobs",
    meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(64)),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("explainer_name", sa.String(256), nullable=False),
    sa.Column("explainer_version", sa.String(32), nullable=False),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),  # JSON: as submitted (checked)
    sa.Column("on_invalid", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),  # explained
    sa.Column("failed", sa.Integer, nullable=False),  # ended with an error
    sa.Column("cancelled", sa.Integer, nullable=False),  # ended by a cancel, not explained
    sa.Column("timeout_s", sa.Float, nullable=False),
    sa.Column("started_ms", sa.BigInteger),
    sa.Column("finished_ms", sa.BigInteger),
    sa.Column("owner", sa.String(96)),
    sa.Column("lease_ms", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Index("ix_eaas_jobs_status", "status", "created_ms"),
    sa.Index("ix_eaas_jobs_model", "model_name", "created_ms"),
)
items = sa.Table(
    "eaas_job_items",
    meta,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("input", sa.Text),  # JSON; cleared when the job ends if inputs are not kept
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("explanation_id", sa.String(32)),
    sa.Column("error", sa.Text),
)


claims = sa.Table(
    "eaas_job_claims",
    meta,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("first_idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_idx", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(96), nullable=False),
    sa.Column("claimed_ms", sa.BigInteger, nullable=False),
    sa.Column("lease_ms", sa.BigInteger, nullable=False),
    sa.Column("committed_ms", sa.BigInteger),  # null: in flight
)


class Lost(Exception):
    """This chunk is no longer this process's to commit (the job ended, or the claim's lease
    ran out and another process took it over)."""


@dataclass(frozen=True)
class Claim:
    """A chunk of a job this process works on: the pending instances (index, input) of the
    claim that starts at `first`; no instances: nothing is free in the job now."""

    job_id: str
    first: int
    todo: list[tuple[int, Any]]


@dataclass(frozen=True)
class Outcome:
    """How one instance ended: its explanation (to store) or its error."""

    idx: int
    pending: Pending | None = None
    error: str | None = None


def now_ms() -> int:
    return int(time.time() * 1000)


def in_flight() -> sa.ColumnElement[bool]:
    return claims.c.committed_ms.is_(None)


def uncovered() -> sa.ColumnElement[bool]:
    """An instance no claim in flight covers."""
    return ~sa.exists().where(claims.c.job_id == items.c.job_id, in_flight(),
                              items.c.idx.between(claims.c.first_idx, claims.c.last_idx))


def free(job_id: Any) -> tuple[sa.ColumnElement[bool], ...]:
    """A job's pending instances no claim in flight covers (`job_id`: a value, or the job
    table's id column for a correlated test)."""
    return (items.c.job_id == job_id, items.c.status == PENDING, uncovered())


def todo_rows(conn: sa.Connection, job_id: str, *where: Any, limit: int | None = None
          ) -> list[tuple[int, Any]]:  # fmt: skip
    q = sa.select(items.c.idx, items.c.input).where(
        items.c.job_id == job_id, items.c.status == PENDING, *where).order_by(items.c.idx)
    rows = conn.execute(q if limit is None else q.limit(limit)).fetchall()
    return [(r.idx, json.loads(r.input)) for r in rows]


def take_late(conn: sa.Connection, job_id: str, owner: str, now: int, lease: int
               ) -> Claim | None:  # fmt: skip
    """The first claim in flight whose lease ran out (its owner died or stalled), now
    `owner`'s; None when there is none."""
    while True:
        late = conn.execute(
            sa.select(claims.c.first_idx, claims.c.last_idx)
            .where(claims.c.job_id == job_id, in_flight(), claims.c.lease_ms < now)
            .order_by(claims.c.first_idx).limit(1)
        ).first()  # fmt: skip
        if late is None:
            return None
        todo = todo_rows(conn, job_id, items.c.idx.between(late.first_idx, late.last_idx))
        # still late: its owner may have renewed it since (renewals do not lock the job row)
        mine = claims.update().where(claims.c.job_id == job_id, in_flight(),
                                     claims.c.first_idx == late.first_idx,
                                     claims.c.lease_ms < now)  # fmt: skip
        if not todo:
            conn.execute(mine.values(committed_ms=now))  # nothing left in it: closed
        elif conn.execute(mine.values(owner=owner, claimed_ms=now, lease_ms=lease)).rowcount:
            return Claim(job_id, late.first_idx, todo)


def to_job(row: Any) -> dict[str, Any]:
    """A job row as the API shows it."""
    m = row._mapping
    t = {k: (iso(m[k]) if m[k] is not None else None)
         for k in ("created_ms", "started_ms", "finished_ms")}  # fmt: skip
    return {
        "id": m["id"],
        "status": m["status"],
        "model": {"name": m["model_name"], "version": m["model_version"]},
        "explainer": {"name": m["explainer_name"], "version": m["explainer_version"],
                      "method": m["method"]},  # fmt: skip
        "parameters": json.loads(m["parameters"]),
        "on_invalid": m["on_invalid"],
        "instances": {"total": m["total"], "done": m["done"], "failed": m["failed"],
                      "cancelled": m["cancelled"],
                      "pending": m["total"] - m["done"] - m["failed"] - m["cancelled"]},
        "created_at": t["created_ms"],
        "started_at": t["started_ms"],
        "finished_at": t["finished_ms"],
        "timeout_s": m["timeout_s"],
        "error": m["error"],
        "request_id": m["request_id"],
    }


def to_item(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {"index": m["idx"], "status": m["status"], "explanation_id": m["explanation_id"],
            "error": m["error"]}  # fmt: skip


def item_cursor(cursor: str | None) -> int:
    """The listing's cursor is the next instance's index, as a decimal string."""
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise BadRequest("cursor: not a cursor returned by this endpoint", field="cursor")
    return int(cursor)


