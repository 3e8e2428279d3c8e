"""Explanation jobs in the explanation store's database: one row per job, one per instance.

Every state change is one transaction guarded by the state it expects, so several processes
(uvicorn workers, restarted services) can share the tables without a coordinator:
- a process *claims* a queued job, or a running one whose lease ran out (its owner died), with
  an UPDATE that names the state it saw; only one claimant's UPDATE matches;
- the owner *renews* its lease while it works;
- a chunk of results is *committed* in one transaction that first bumps the job row where this
  process still owns it and it still runs (the row lock serializes committers), then checks that
  the chunk's instances are still pending, then writes their explanations and marks them. A
  process that lost its lease, or a cancelled job, writes nothing: no instance ends twice;
- cancelling marks the job and its pending instances in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from eaas.api.audit.store import ExplanationStore, Pending, explanations, iso, meta
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


class Lost(Exception):
    """This process no longer owns the job (cancelled, or its lease went to another)."""


@dataclass(frozen=True)
class Outcome:
    """How one instance ended: its explanation (to store) or its error."""

    idx: int
    pending: Pending | None = None
    error: str | None = None


def now_ms() -> int:
    return int(time.time() * 1000)


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


class JobStore:
    """Jobs on the explanation store's engine (same database, same retention)."""

    def __init__(self, store: ExplanationStore) -> None:
        self.store, self.engine = store, store.engine
        self.schema_ready = False

    def ensure_schema(self) -> None:
        if not self.schema_ready:
            self.store.ensure_schema()  # the shared metadata: creates the job tables too
            meta.create_all(self.engine, tables=[jobs, items])
            self.schema_ready = True

    # --- submission --------------------------------------------------------------------------

    def create(self, job: dict[str, Any], inputs: list[Any], errors: list[str | None]) -> str:
        """One job and its instances (an instance refused at submission ends with its error)."""
        self.ensure_schema()
        failed = sum(e is not None for e in errors)
        row = {**job, "status": QUEUED if failed < len(inputs) else DONE, "total": len(inputs),
               "done": 0, "failed": failed, "cancelled": 0}  # fmt: skip
        if row["status"] == DONE:
            row["finished_ms"] = row["created_ms"]
        with self.engine.begin() as conn:
            conn.execute(jobs.insert().values(**row))
            for start in range(0, len(inputs), INSERT_ROWS):
                conn.execute(items.insert(), [
                    {"job_id": job["id"], "idx": i, "input": json.dumps(inputs[i]),
                     "status": PENDING if errors[i] is None else ERROR, "error": errors[i],
                     "explanation_id": None}
                    for i in range(start, min(start + INSERT_ROWS, len(inputs)))
                ])  # fmt: skip
        return str(job["id"])

    # --- running -----------------------------------------------------------------------------

    def claim(self, owner: str, lease_s: float, models: list[str]) -> dict[str, Any] | None:
        """The oldest queued job of `models`, or a running one whose lease ran out, now owned
        by `owner`."""
        self.ensure_schema()
        now = now_ms()
        free = sa.or_(jobs.c.status == QUEUED,
                      sa.and_(jobs.c.status == RUNNING, jobs.c.lease_ms < now))  # fmt: skip
        with self.engine.connect() as conn:
            ids = conn.execute(
                sa.select(jobs.c.id).where(free, jobs.c.model_name.in_(models))
                .order_by(jobs.c.created_ms, jobs.c.id).limit(8)
            ).scalars().all()  # fmt: skip
        for id_ in ids:
            with self.engine.begin() as conn:
                got = conn.execute(
                    jobs.update().where(jobs.c.id == id_, free).values(
                        status=RUNNING, owner=owner, lease_ms=now + int(lease_s * 1000),
                        started_ms=sa.func.coalesce(jobs.c.started_ms, now),
                    )
                )  # fmt: skip
                if got.rowcount == 1:
                    row = conn.execute(sa.select(jobs).where(jobs.c.id == id_)).first()
                    return to_job(row)
        return None

    def renew(self, owner: str, ids: list[str], lease_s: float) -> dict[str, str]:
        """Extend this owner's leases; the status of each job (what is gone: not running)."""
        if not ids:
            return {}
        with self.engine.begin() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id.in_(ids), jobs.c.owner == owner, jobs.c.status == RUNNING)
                .values(lease_ms=now_ms() + int(lease_s * 1000))
            )
            rows = conn.execute(
                sa.select(jobs.c.id, jobs.c.status, jobs.c.owner).where(jobs.c.id.in_(ids))
            ).fetchall()
        return {r.id: (r.status if r.owner == owner else "lost") for r in rows}

    def release(self, job_id: str, owner: str) -> None:
        """Give a job back to the queue (this process cannot run it now)."""
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.owner == owner,
                                             jobs.c.status == RUNNING)
                         .values(status=QUEUED, owner=None, lease_ms=None))  # fmt: skip

    def pending(self, job_id: str, limit: int, after: int = -1) -> list[tuple[int, Any]]:
        """The next instances to explain, in order: (index, input); `after` skips the indices
        a runner has already passed (they ended), so a long job does not rescan them."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(items.c.idx, items.c.input)
                .where(items.c.job_id == job_id, items.c.status == PENDING,
                       items.c.idx > after)
                .order_by(items.c.idx).limit(limit)
            ).fetchall()  # fmt: skip
        return [(r.idx, json.loads(r.input)) for r in rows]

    def commit(self, job_id: str, owner: str, outcomes: list[Outcome]) -> None:
        """Store a chunk's explanations and mark its instances, all or nothing; `Lost` when
        this process no longer owns the running job or an instance already ended."""
        done = [o for o in outcomes if o.pending is not None]
        idx = [o.idx for o in outcomes]
        with self.engine.begin() as conn:
            bumped = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.owner == owner, jobs.c.status == RUNNING)
                .values(done=jobs.c.done + len(done),
                        failed=jobs.c.failed + len(outcomes) - len(done))
            )  # fmt: skip
            if bumped.rowcount != 1:
                raise Lost(job_id)
            still = conn.execute(
                sa.select(sa.func.count()).select_from(items).where(
                    items.c.job_id == job_id, items.c.idx.in_(idx), items.c.status == PENDING)
            ).scalar()  # fmt: skip
            if still != len(outcomes):
                raise Lost(job_id)  # rolled back: nothing of this chunk is written
            if done:
                keep = self.store.store_inputs
                rows = [o.pending.row(keep) for o in done if o.pending is not None]
                conn.execute(explanations.insert(), rows)
            conn.execute(
                items.update()
                .where(items.c.job_id == job_id, items.c.idx == sa.bindparam("i"))
                .values(status=sa.bindparam("s"), explanation_id=sa.bindparam("e"),
                        error=sa.bindparam("err")),
                [{"i": o.idx, "s": DONE if o.pending else ERROR,
                  "e": o.pending.id if o.pending else None, "err": o.error} for o in outcomes],
            )  # fmt: skip

    def finish(self, job_id: str, owner: str, status: str, error: str | None = None,
               keep_inputs: bool = True) -> bool:  # fmt: skip
        """End a job this process owns; instances still pending end with `error`."""
        with self.engine.begin() as conn:
            ended = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.owner == owner, jobs.c.status == RUNNING)
                .values(status=status, finished_ms=now_ms(), lease_ms=None, error=error)
            )
            if ended.rowcount != 1:
                return False
            self._end_pending(conn, job_id, error or status)
            if not keep_inputs:
                conn.execute(items.update().where(items.c.job_id == job_id).values(input=None))
        return True

    def cancel(self, job_id: str, keep_inputs: bool = True) -> dict[str, Any] | None:
        """Cancel a queued or running job (its pending instances end as cancelled); the job
        as it is now, or None when there is none."""
        self.ensure_schema()
        with self.engine.begin() as conn:
            ended = conn.execute(
                jobs.update().where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
                .values(status=CANCELLED, finished_ms=now_ms(), lease_ms=None)
            )  # fmt: skip
            if ended.rowcount == 1:
                self._end_pending(conn, job_id, "job cancelled", status=CANCELLED)
                if not keep_inputs:
                    conn.execute(items.update().where(items.c.job_id == job_id)
                                 .values(input=None))  # fmt: skip
        return self.get(job_id)

    @staticmethod
    def _end_pending(conn: sa.Connection, job_id: str, why: str, status: str = ERROR) -> None:
        n = conn.execute(
            items.update().where(items.c.job_id == job_id, items.c.status == PENDING)
            .values(status=status, error=why)
        ).rowcount  # fmt: skip
        if n:
            count = jobs.c.cancelled if status == CANCELLED else jobs.c.failed
            conn.execute(jobs.update().where(jobs.c.id == job_id)
                         .values({count: count + n}))  # fmt: skip

    # --- reading -----------------------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any] | None:
        self.ensure_schema()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else to_job(row)

    def counts(self) -> dict[str, int]:
        """Jobs per active status (for the metrics)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(jobs.c.status, sa.func.count()).where(jobs.c.status.in_(ACTIVE))
                .group_by(jobs.c.status)
            ).fetchall()  # fmt: skip
        return {QUEUED: 0, RUNNING: 0, **{r[0]: int(r[1]) for r in rows}}

    def page(self, model: str | None = None, status: str | None = None, limit: int = 20,
             cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
        """Newest first; the cursor is the last job's id (ids sort by time)."""
        self.ensure_schema()
        q = sa.select(jobs)
        if model is not None:
            q = q.where(jobs.c.model_name == model)
        if status is not None:
            q = q.where(jobs.c.status == status)
        if cursor is not None:
            q = q.where(jobs.c.id < cursor)
        q = q.order_by(jobs.c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(q).fetchall()
        more = len(rows) > limit
        out = [to_job(r) for r in rows[:limit]]
        return out, (out[-1]["id"] if more and out else None)

    def items_page(self, job_id: str, start: int, limit: int
                   ) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(items.c.idx, items.c.status, items.c.explanation_id, items.c.error)
                .where(items.c.job_id == job_id, items.c.idx >= start)
                .order_by(items.c.idx).limit(limit + 1)
            ).fetchall()  # fmt: skip
        more = len(rows) > limit
        out = [to_item(r) for r in rows[:limit]]
        return out, (str(out[-1]["index"] + 1) if more and out else None)

    def results(self, job_id: str, page: int = 500) -> Iterator[list[dict[str, Any]]]:
        """Every instance in order, a page at a time: its status, error and explanation."""
        start = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(items.c.idx, items.c.status, items.c.explanation_id,
                              items.c.error, explanations.c.explanation)
                    .select_from(items.outerjoin(
                        explanations, explanations.c.id == items.c.explanation_id))
                    .where(items.c.job_id == job_id, items.c.idx >= start)
                    .order_by(items.c.idx).limit(page)
                ).fetchall()  # fmt: skip
            if not rows:
                return
            yield [{**to_item(r), "explanation": (json.loads(r.explanation)
                                                   if r.explanation is not None else None)}
                   for r in rows]  # fmt: skip
            start = rows[-1].idx + 1

    # --- retention ---------------------------------------------------------------------------

    def purge(self, retention_days: int) -> int:
        """Delete jobs that ended before the retention period (their explanations follow the
        store's own retention); 0 days keeps everything."""
        if retention_days <= 0:
            return 0
        self.ensure_schema()
        cutoff = now_ms() - retention_days * 86_400_000
        old = sa.select(jobs.c.id).where(jobs.c.status.not_in(ACTIVE),
                                         jobs.c.finished_ms < cutoff)  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(items.delete().where(items.c.job_id.in_(old)))
            return int(conn.execute(jobs.delete().where(jobs.c.id.in_(old))).rowcount or 0)
