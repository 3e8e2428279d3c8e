"""Explanation jobs in the explanation store's database: one row per job, one per instance.

Every state change is one transaction guarded by the state it expects, so several processes
(uvicorn workers, hosts, Ray replicas) can share the tables, and one job, without a coordinator.
Work is handed out a chunk of instances at a time, as *claims* (`eaas_job_claims`: a range of
instance indices, its owner, a lease):
- a process *takes* a chunk: the first pending instances no claim in flight covers, or a claim
  in flight whose lease ran out (its owner died), whole. The transaction first updates the job
  row, so takers and committers of one job are serialized by its row lock;
- the owner *renews* the leases of its claims while it works;
- a chunk of results is *committed* in one transaction that bumps the job row where it still
  runs, marks the claim committed where this process still owns it, checks that the chunk's
  instances are still pending, then writes their explanations and marks them; the commit that
  ends the last instance ends the job. A process whose claim was taken over, or a cancelled job,
  writes nothing: no instance ends twice. Committed claims stay, so which process explained
  which instances is on record;
- cancelling marks the job and its pending instances in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from eaas.api.audit.store import ExplanationStore, explanations, meta
from eaas.api.jobs.tables import (
    ACTIVE,
    CANCELLED,
    DONE,
    ERROR,
    FAILED,
    INSERT_ROWS,
    MAX_ITEMS,
    PENDING,
    QUEUED,
    RUNNING,
    STATUSES,
    Claim,
    Lost,
    Outcome,
    claims,
    free,
    in_flight,
    item_cursor,
    items,
    jobs,
    now_ms,
    take_late,
    to_item,
    to_job,
    todo_rows,
    uncovered,
)

__all__ = ["ACTIVE", "CANCELLED", "DONE", "FAILED", "MAX_ITEMS", "QUEUED", "RUNNING",
           "STATUSES", "Claim", "JobStore", "Lost", "Outcome", "item_cursor", "items", "jobs",
           "now_ms"]  # fmt: skip


class JobStore:
    """Jobs on the explanation store's engine (same database, same retention)."""

    def __init__(self, store: ExplanationStore) -> None:
        self.store, self.engine = store, store.engine
        self.schema_ready = False

    def ensure_schema(self) -> None:
        if not self.schema_ready:
            self.store.ensure_schema()  # the shared metadata: creates the job tables too
            meta.create_all(self.engine, tables=[jobs, items, claims])
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

    def claim(self, models: list[str], busy: list[str] | tuple[str, ...] = ()
              ) -> dict[str, Any] | None:  # fmt: skip
        """The oldest active job of `models` with work free for another process (pending
        instances no claim covers, or a claim whose lease ran out), `busy` jobs left out."""
        self.ensure_schema()
        expired = sa.exists().where(claims.c.job_id == jobs.c.id, in_flight(),
                                    claims.c.lease_ms < now_ms())  # fmt: skip
        q = sa.select(jobs).where(
            jobs.c.status.in_(ACTIVE), jobs.c.model_name.in_(models),
            sa.or_(jobs.c.status == QUEUED, expired, sa.exists().where(*free(jobs.c.id))),
        )  # fmt: skip
        if busy:
            q = q.where(jobs.c.id.not_in(list(busy)))
        with self.engine.connect() as conn:
            row = conn.execute(q.order_by(jobs.c.created_ms, jobs.c.id).limit(1)).first()
        return None if row is None else to_job(row)

    def take(self, job_id: str, owner: str, lease_s: float, size: int) -> Claim | None:
        """Claim the next chunk of a job for `owner`: a claim whose lease ran out, whole, else
        up to `size` free pending instances (never across another claim). None: the job ended."""
        now = now_ms()
        lease = now + int(lease_s * 1000)
        with self.engine.begin() as conn:
            got = conn.execute(  # first: the job's row lock orders takers and committers
                jobs.update().where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
                .values(status=RUNNING, owner=owner, lease_ms=None,
                        started_ms=sa.func.coalesce(jobs.c.started_ms, now))
            )  # fmt: skip
            if got.rowcount != 1:
                return None
            late = take_late(conn, job_id, owner, now, lease)
            if late is not None:
                return late
            todo = todo_rows(conn, job_id, uncovered(), limit=size)
            if not todo:
                return Claim(job_id, -1, [])
            nxt = conn.execute(
                sa.select(sa.func.min(claims.c.first_idx))
                .where(claims.c.job_id == job_id, in_flight(), claims.c.first_idx > todo[0][0])
            ).scalar()  # fmt: skip
            todo = [t for t in todo if nxt is None or t[0] < nxt]
            conn.execute(claims.insert().values(
                job_id=job_id, first_idx=todo[0][0], last_idx=todo[-1][0], owner=owner,
                claimed_ms=now, lease_ms=lease, committed_ms=None))  # fmt: skip
        return Claim(job_id, todo[0][0], todo)

    def renew(self, owner: str, ids: list[str], lease_s: float) -> dict[str, str]:
        """Extend the leases of this owner's claims in flight; the status of each job."""
        if not ids:
            return {}
        with self.engine.begin() as conn:
            conn.execute(
                claims.update()
                .where(claims.c.job_id.in_(ids), claims.c.owner == owner, in_flight())
                .values(lease_ms=now_ms() + int(lease_s * 1000))
            )
            rows = conn.execute(
                sa.select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(ids))
            ).fetchall()
        return {r.id: r.status for r in rows}

    def release(self, job_id: str, owner: str) -> None:
        """Give this owner's claims of a job back (this process cannot run them now); a job
        nobody else works on goes back to `queued`."""
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id)  # the row lock first
                         .values(lease_ms=None))  # fmt: skip
            conn.execute(claims.delete().where(claims.c.job_id == job_id,
                                               claims.c.owner == owner, in_flight()))  # fmt: skip
            others = sa.exists().where(claims.c.job_id == job_id, in_flight())
            conn.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.status == RUNNING,
                                             ~others)
                         .values(status=QUEUED, owner=None))  # fmt: skip

    def commit(self, claim: Claim, owner: str, outcomes: list[Outcome],
               keep_inputs: bool = True) -> bool:  # fmt: skip
        """Store a chunk's explanations and mark its instances, all or nothing; True when this
        commit ended the job's last instance (the job is then done). `Lost` when the job no
        longer runs, the claim is no longer this owner's, or an instance already ended."""
        job_id, done = claim.job_id, [o for o in outcomes if o.pending is not None]
        idx = [o.idx for o in outcomes]
        with self.engine.begin() as conn:
            bumped = conn.execute(
                jobs.update().where(jobs.c.id == job_id, jobs.c.status == RUNNING)
                .values(done=jobs.c.done + len(done),
                        failed=jobs.c.failed + len(outcomes) - len(done))
            )  # fmt: skip
            if bumped.rowcount != 1:
                raise Lost(job_id)  # the job ended; raising rolls the transaction back
            mine = conn.execute(
                claims.update().where(claims.c.job_id == job_id, claims.c.first_idx == claim.first,
                                      claims.c.owner == owner, in_flight())
                .values(committed_ms=now_ms())
            )  # fmt: skip
            still = conn.execute(
                sa.select(sa.func.count()).select_from(items).where(
                    items.c.job_id == job_id, items.c.idx.in_(idx), items.c.status == PENDING)
            ).scalar()  # fmt: skip
            if mine.rowcount != 1 or still != len(outcomes):
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
            ended = conn.execute(
                jobs.update().where(jobs.c.id == job_id, jobs.c.status == RUNNING,
                                    jobs.c.done + jobs.c.failed + jobs.c.cancelled >= jobs.c.total)
                .values(status=DONE, finished_ms=now_ms(), lease_ms=None)
            ).rowcount == 1  # fmt: skip
            if ended and not keep_inputs:
                conn.execute(items.update().where(items.c.job_id == job_id).values(input=None))
        return ended

    def finish(self, job_id: str, status: str, error: str | None = None,
               keep_inputs: bool = True) -> bool:  # fmt: skip
        """End an active job (time budget, a failure, an ended run); the instances still
        pending end with `error`."""
        with self.engine.begin() as conn:
            ended = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
                .values(status=status, finished_ms=now_ms(), lease_ms=None, error=error)
            )
            if ended.rowcount != 1:
                return False
            self._end_pending(conn, job_id, error or status)
            if not keep_inputs:
                conn.execute(items.update().where(items.c.job_id == job_id).values(input=None))
        return True

    def workers(self, job_id: str) -> list[dict[str, Any]]:
        """Who explained (or holds) which instances of a job: its claims, in index order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(claims).where(claims.c.job_id == job_id).order_by(claims.c.first_idx)
            ).fetchall()  # fmt: skip
        return [{"first": r.first_idx, "last": r.last_idx, "owner": r.owner,
                 "committed": r.committed_ms is not None} for r in rows]  # fmt: skip

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
            conn.execute(claims.delete().where(claims.c.job_id.in_(old)))
            return int(conn.execute(jobs.delete().where(jobs.c.id.in_(old))).rowcount or 0)
