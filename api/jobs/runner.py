"""The job runner: one per service process, an asyncio task beside the request handlers.

Every `job_poll_s` it renews the leases of its claims (and learns which jobs were cancelled
elsewhere), refreshes the job gauges, and joins the oldest job with free work while it runs
fewer than `job_threads`. A job is explained a chunk at a time: the runner *takes* a chunk from
the store (the next pending instances no other process holds, or a chunk whose owner died),
explains it on the executor's thread pool through the same `run_engine` call as a synchronous
request (same numbers), and commits it in one transaction (`JobStore.commit`). So every process
serving the model (uvicorn workers, hosts, Ray replicas) works on the same job at once, and a
process killed mid-chunk loses only that chunk, which another takes once its lease has run out.

The sharing rule (docs/operations.md): a process runs at most `job_threads` jobs at once, oldest
first (FIFO across jobs), each one chunk at a time, so jobs hold at most `job_threads` of the
`executor_threads` pool threads and synchronous requests always keep the rest. Chunks grow or
shrink towards `CHUNK_S` seconds of work, so a commit is neither per row nor minutes apart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from eaas.api import audit
from eaas.api.batching import Abandoned, Executor, run_engine
from eaas.api.errors import Unavailable
from eaas.api.jobs.store import ACTIVE, CANCELLED, FAILED, JobStore, Lost, Outcome
from eaas.api.metrics import Metrics
from eaas.api.repository import Loaded, ModelRepository
from eaas.api.settings import ServeSettings
from eaas.explain.errors import EaasError, one_line
from eaas.explain.validation import Params

log = logging.getLogger("eaas.jobs")
CHUNK_S = 0.25  # target seconds of work per committed chunk
PURGE_EVERY_S = 3600.0


@dataclass
class Running:
    """A job this process works on, and why it should stop (set from the event loop)."""

    job: dict[str, Any]
    stop: threading.Event = field(default_factory=threading.Event)
    why: str = ""

    def halt(self, why: str) -> None:
        self.why = self.why or why
        self.stop.set()


class JobRunner:
    def __init__(
        self,
        settings: ServeSettings,
        jobs: JobStore,
        repository: ModelRepository,
        executor: Executor,
        metrics: Metrics,
    ) -> None:
        self.settings, self.jobs, self.repository = settings, jobs, repository
        self.executor, self.metrics = executor, metrics
        self.owner = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.running: dict[str, Running] = {}
        self.tasks: set[asyncio.Task] = set()
        self._wake: asyncio.Event | None = None
        self._next_purge = 0.0

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            try:
                await self.tick()
            except (SQLAlchemyError, OSError) as exc:  # database away: retried next poll
                log.warning("job runner: store unavailable (%s)", type(exc).__name__)
            except Exception:  # a bug must not end the loop: every later job would wait
                log.exception("job runner: unexpected error")
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.job_poll_s)
            except TimeoutError:
                pass
            self._wake.clear()

    def wake(self) -> None:
        """A job was submitted or ended here: look for work now rather than at the next poll."""
        if self._wake is not None:
            self._wake.set()

    async def tick(self) -> None:
        lease = self.settings.job_lease_s
        seen = await asyncio.to_thread(self.jobs.renew, self.owner, list(self.running), lease)
        for id_, status in seen.items():
            if status not in ACTIVE and id_ in self.running:
                self.running[id_].halt(status)  # cancelled elsewhere, or ended
        counts = await asyncio.to_thread(self.jobs.counts)
        for status, n in counts.items():
            self.metrics.jobs.labels(status).set(n)
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY_S
            await asyncio.to_thread(self.jobs.purge, self.settings.store_retention_days)
        # only the models this process serves, once it knows them (several services with
        # different models may share one store)
        served = self.repository.names() if self.repository.ready else []
        while served and len(self.running) < self.settings.job_threads:
            job = await asyncio.to_thread(self.jobs.claim, served, list(self.running))
            if job is None:
                break
            run = self.running[job["id"]] = Running(job)
            task = asyncio.create_task(self._guarded(run))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def cancelled_here(self, job_id: str) -> None:
        """A DELETE answered by this process: stop its work now, not at the next poll."""
        if job_id in self.running:
            self.running[job_id].halt(CANCELLED)

    async def close(self) -> None:
        """Stop every job within one forward batch and give it back to the queue, so a
        restarted service resumes it at once instead of after the lease."""
        for run in self.running.values():
            run.halt("shutdown")
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=self.settings.grace_s)

    # --- one job -------------------------------------------------------------------------------

    async def _guarded(self, run: Running) -> None:
        id_ = run.job["id"]
        try:
            await self._work(run)
        except (SQLAlchemyError, OSError) as exc:  # the lease runs out; another owner resumes
            log.warning("job %s: store unavailable (%s)", id_, type(exc).__name__)
        except EaasError as exc:  # e.g. parameters the explainer no longer takes: say why
            await self._finish(run.job, FAILED, one_line(exc))
        except Exception as exc:  # a bug: the job fails with one line, never silently
            log.exception("job %s failed", id_)
            await asyncio.to_thread(self.jobs.finish, id_, FAILED,
                                    f"internal error ({type(exc).__name__}); the service log "
                                    "has the details")  # fmt: skip
        finally:
            self.running.pop(id_, None)
            self.wake()

    async def _work(self, run: Running) -> None:
        job = run.job
        loaded = await self._load(run)
        if loaded is None:
            return
        params = loaded.engine.check_params(job["parameters"])
        started = time.time() if job["started_at"] is None else _epoch(job["started_at"])
        deadline = started + job["timeout_s"]
        size, lease = loaded.engine.inputs.chunk, self.settings.job_lease_s
        while True:
            if run.stop.is_set():
                if run.why == "shutdown":
                    await asyncio.to_thread(self.jobs.release, job["id"], self.owner)
                return
            if time.time() > deadline:
                why = f"job time budget of {job['timeout_s']:g} s exceeded"
                await self._finish(job, FAILED, why)
                return
            claim = await asyncio.to_thread(self.jobs.take, job["id"], self.owner, lease, size)
            if claim is None or not claim.todo:
                return  # the job ended, or the rest is in other processes' hands
            t0 = time.monotonic()
            outcomes = await self._chunk(run, loaded, params, claim.todo, deadline)
            if outcomes is None:
                continue  # stopped mid-chunk: the loop's first checks say why
            try:
                ended = await asyncio.to_thread(self.jobs.commit, claim, self.owner, outcomes,
                                                self.settings.store_inputs)  # fmt: skip
            except Lost:  # the job ended, or this chunk's lease ran out and was taken over
                log.info("job %s: chunk at %d no longer ours", job["id"], claim.first)
                continue
            ok = sum(o.pending is not None for o in outcomes)
            self.metrics.job_instances.labels("done").inc(ok)
            self.metrics.job_instances.labels("error").inc(len(outcomes) - ok)
            if ended:
                return
            size = _resize(size, time.monotonic() - t0, loaded.engine.inputs.chunk,
                           self.settings.max_batch)  # fmt: skip

    async def _load(self, run: Running) -> Loaded | None:
        job = run.job
        ref = f"{job['model']['name']}/{job['model']['version']}"
        try:
            return await asyncio.to_thread(self.repository.get, ref)
        except Unavailable:  # the registry or the model is not there now: later
            await asyncio.to_thread(self.jobs.release, job["id"], self.owner)
        except EaasError as exc:  # the version is gone or no longer served: the job cannot run
            await self._finish(job, FAILED, one_line(exc))
        return None

    async def _finish(self, job: dict[str, Any], status: str, error: str | None = None) -> None:
        await asyncio.to_thread(self.jobs.finish, job["id"], status, error,
                                self.settings.store_inputs)  # fmt: skip

    async def _chunk(
        self, run: Running, loaded: Loaded, params: Params, todo: list[tuple[int, Any]],
        deadline: float,
    ) -> list[Outcome] | None:  # fmt: skip
        """Explain one chunk: every instance ends with its explanation or its own error; None
        when the job was stopped (cancel, time budget, shutdown) before the chunk ended."""
        def halt() -> bool:
            return run.stop.is_set() or time.time() > deadline

        inputs = [x for _, x in todo]
        try:
            records: list[dict | Exception] = list(
                await self._explain(loaded, params, inputs, halt)
            )
        except Abandoned:
            return None
        except Exception:  # one instance's failure must not fail the others: one by one
            records = []
            for x in inputs:
                try:
                    records += await self._explain(loaded, params, [x], halt)
                except Abandoned:
                    return None
                except Exception as exc:
                    records.append(exc)
        return self._outcomes(run.job["id"], loaded, params, todo, records)

    async def _explain(self, loaded: Loaded, params: Params, inputs: list[Any],
                       halt: Any) -> list[dict]:  # fmt: skip
        checked = loaded.engine.check(inputs, params, max_chars=self.settings.max_text_chars)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor.pool, run_engine, loaded, checked, halt)

    def _outcomes(self, job_id: str, loaded: Loaded, params: Params,
                  todo: list[tuple[int, Any]], records: list[dict | Exception]
                  ) -> list[Outcome]:  # fmt: skip
        used = loaded.engine.used_params(params)
        good = [(t, r) for t, r in zip(todo, records, strict=True) if isinstance(r, dict)]
        pend = audit.pending(self.jobs.store, job_id, loaded, [x for (_, x), _ in good], used,
                             [r for _, r in good])  # fmt: skip
        by_idx = {i: p for ((i, _), _), p in zip(good, pend, strict=True)}
        return [
            Outcome(i, pending=by_idx[i]) if i in by_idx
            else Outcome(i, error=row_error(r) if isinstance(r, Exception) else "failed")
            for (i, _), r in zip(todo, records, strict=True)
        ]


def row_error(exc: BaseException) -> str:
    """One instance's error on its own row: without the `instances[i].` position. An unexpected
    exception (the model's own code failing) is named by its type only: its message may quote
    the input, and errors never echo payloads; the log has the details."""
    if not isinstance(exc, EaasError):
        log.warning("job instance failed: %s", one_line(exc))
        return f"internal error ({type(exc).__name__}); the service log has the details"
    return str(getattr(exc, "row_message", None) or one_line(exc))


def _resize(size: int, took: float, least: int, most: int) -> int:
    """Double a chunk that took under half the target, halve one that took over twice it."""
    if took < CHUNK_S / 2:
        return min(size * 2, most)
    if took > CHUNK_S * 2:
        return max(size // 2, least)
    return size


def _epoch(iso_time: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso_time).timestamp()

