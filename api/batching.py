"""The executor: LRU cache, micro-batching and a bounded thread pool.

It takes instances the data plane checked (`Checked`) and never judges them again. Work never
runs on the event loop (except a few rows of an exact method when nothing waits). Concurrent
requests for the same explainer and parameters are coalesced into one engine call: an idle
explainer takes a request at once (after an optional `batch_window_ms` wait for company); while
its batch runs, arrivals join the next one (up to `max_batch` instances), so batches grow with
load and add no latency when there is none.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from cachetools import LRUCache

from eaas.api.errors import Unavailable
from eaas.api.metrics import Metrics
from eaas.api.render import null_missing
from eaas.api.repository import Loaded
from eaas.api.settings import ServeSettings
from eaas.explain.engine import Checked
from eaas.explain.errors import Stopped
from eaas.explain.validation import Params

log = logging.getLogger("eaas.api")
Item = tuple[Checked, asyncio.Future]


def _digest(instance: Any) -> bytes:
    """Cache key of one checked instance, as the engine's rule made it: a float64 row (its
    bytes), a row of typed values (their reprs: an object array's bytes are pointers) or a text."""
    if isinstance(instance, np.ndarray) and instance.dtype != object:
        raw = instance.tobytes()
    else:
        items = instance.tolist() if isinstance(instance, np.ndarray) else instance
        raw = repr(items).encode()
    return hashlib.blake2b(raw, digest_size=16).digest()


class Abandoned(Exception):
    """Every request waiting for this batch has given up (time budget): stop early."""


def run_engine(
    loaded: Loaded, checked: Checked, abandoned: Callable[[], bool] = lambda: False
) -> list[dict]:
    """The engine call the pyfunc's predict makes, on instances already checked by the same
    rule; one dict per instance.

    Runs in chunks of the input rule's size (`engine.inputs.chunk`) so that timed-out work stops
    within a chunk instead of holding a thread; long methods also poll `abandoned` within (text:
    before every model forward batch). Results do not depend on chunking (instances are
    explained independently of their batch).
    """
    engine = loaded.engine
    chunk = engine.inputs.chunk
    records: list[dict] = []
    for start in range(0, len(checked), chunk):
        if abandoned():
            raise Abandoned()
        try:
            records += engine.explain_records(
                checked.part(start, start + chunk), stop=abandoned, offset=start
            )
        except Stopped:
            raise Abandoned() from None
    return [null_missing(r) for r in records]


class Batcher:
    """Coalesces submissions for one (explainer version, parameters) pair."""

    def __init__(self, owner: Executor, loaded: Loaded, params: Params) -> None:
        self.owner, self.loaded, self.params = owner, loaded, params
        self.items: list[Item] = []
        self.draining = False
        self.slot = owner.engine_slot(loaded.key, loaded.engine.reentrant)

    async def submit(self, checked: Checked) -> list[dict]:
        fut = asyncio.get_running_loop().create_future()
        self.items.append((checked, fut))
        if not self.draining:
            self.draining = True
            asyncio.create_task(self._drain())
        return await fut

    def _take(self) -> list[Item]:
        batch: list[Item] = []
        n = 0
        while self.items and (not batch or n + len(self.items[0][0]) <= self.owner.max_batch):
            item = self.items.pop(0)
            if item[1].cancelled():  # timed out while waiting: its slot is free, skip the work
                self.owner.release(len(item[0]))
                continue
            batch.append(item)
            n += len(item[0])
        return batch

    async def _drain(self) -> None:
        try:
            if self.owner.window_s > 0:
                await asyncio.sleep(self.owner.window_s)
            while self.items:
                # one batch at a time per explainer (its engine serializes anyway): while it
                # runs, arrivals keep joining the next batch instead of queueing one by one
                await self.slot.acquire()
                batch = self._take()
                if batch:
                    asyncio.create_task(self._run(batch))
                else:
                    self.slot.release()
        finally:
            self.draining = False

    def _merge(self, batch: list[Item]) -> Checked:
        """The batch's instances as one checked call (same parameters: same batcher)."""
        items = [x for checked, _ in batch for x in checked.data]
        return Checked(self.loaded.engine.inputs.stack(items), self.params)

    async def _run(self, batch: list[Item]) -> None:
        try:
            futures = [fut for _, fut in batch]
            try:
                results = await self.owner.call(
                    self.loaded, self._merge(batch), lambda: all(f.done() for f in futures)
                )
                parts: list[list[dict] | Exception] = []
                start = 0
                for checked, _ in batch:
                    parts.append(results[start : start + len(checked)])
                    start += len(checked)
            except Abandoned:
                self.owner.metrics.abandoned.inc()
                parts = [Abandoned()] * len(batch)
            except Exception:
                # one request's failure must not fail the others coalesced with it
                parts = await self._one_by_one(batch)
        finally:
            self.slot.release()
        for (checked, fut), part in zip(batch, parts, strict=True):
            self.owner.release(len(checked))
            if fut.done():
                continue
            if isinstance(part, Exception):
                fut.set_exception(part)
            else:
                fut.set_result(part)

    async def _one_by_one(self, batch: list[Item]) -> list[list[dict] | Exception]:
        out: list[list[dict] | Exception] = []
        for checked, _ in batch:
            try:
                out.append(await self.owner.call(self.loaded, checked))
            except Exception as exc:
                out.append(exc)
        return out


class Executor:
    """Owns the thread pool, the cache, the batchers and the queue bound."""

    def __init__(self, settings: ServeSettings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.pool = ThreadPoolExecutor(settings.executor_threads, thread_name_prefix="explain")
        self.slots: dict[str, asyncio.Semaphore] = {}
        self.window_s = settings.batch_window_ms / 1000
        self.max_batch = settings.max_batch
        self.cache: LRUCache | None = LRUCache(settings.cache_size) if settings.cache_size else None
        self.batchers: dict[tuple[str, str], Batcher] = {}
        self.pending = 0

    async def call(
        self, loaded: Loaded, checked: Checked, abandoned: Callable[[], bool] = lambda: False
    ) -> list[dict]:
        self.metrics.batch_size.labels(loaded.model["name"]).observe(len(checked))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, run_engine, loaded, checked, abandoned)

    def engine_slot(self, key: str, reentrant: bool = False) -> asyncio.Semaphore:
        """One running batch per explainer, or one per executor thread for a re-entrant (text)
        engine: a light request then runs beside a heavy one instead of waiting behind it.
        The pool bounds threads across explainers."""
        n = self.settings.executor_threads if reentrant else 1
        return self.slots.setdefault(key, asyncio.Semaphore(n))

    def release(self, n: int) -> None:
        self.pending -= n
        self.metrics.queue.set(self.pending)

    async def explain(self, loaded: Loaded, checked: Checked) -> list[dict]:
        """One dict per checked instance, in order: from the cache, inline, or batched."""
        pkey = repr(checked.params)  # Params: a frozen dataclass of checked values
        keys = [(loaded.key, pkey, _digest(x)) for x in checked.data]
        out: list[dict | None] = [
            self.cache.get(k) if self.cache is not None else None for k in keys
        ]
        todo = [i for i, r in enumerate(out) if r is None]
        self.metrics.cache.labels("hit").inc(len(checked) - len(todo))
        self.metrics.cache.labels("miss").inc(len(todo))
        if todo:
            if self.pending + len(todo) > self.settings.max_queue:
                raise Unavailable("server busy: explanation queue is full", retry_after=1)
            rest = checked if len(todo) == len(checked) else checked.take(todo)
            if self._inline(loaded, len(todo)):
                fresh = self._run_inline(loaded, rest)
            else:
                self.pending += len(todo)
                self.metrics.queue.set(self.pending)
                fresh = await self._batcher(loaded, checked.params).submit(rest)
            for i, r in zip(todo, fresh, strict=True):
                out[i] = r
                if self.cache is not None:
                    self.cache[keys[i]] = r
        return [r for r in out if r is not None]

    # --- P4 (issue 10): an exact explainer, a few rows, nothing queued: run on the loop -------
    def _inline(self, loaded: Loaded, n: int) -> bool:
        """Exact methods on a few rows cost about a millisecond: when nothing waits, the two
        thread hops to the pool and back cost as much as the work, so it runs here instead."""
        return (
            self.pending == 0
            and n <= self.settings.inline_exact_rows
            and loaded.engine.exact
        )

    def _run_inline(self, loaded: Loaded, checked: Checked) -> list[dict]:
        self.metrics.batch_size.labels(loaded.model["name"]).observe(len(checked))
        return run_engine(loaded, checked)

    def _batcher(self, loaded: Loaded, params: Params) -> Batcher:
        """One batcher per (explainer, parameters), at most `max_batchers` of them: the least
        recently used idle ones go (a busy one is kept: it holds waiting requests)."""
        key = (loaded.key, repr(params))
        batcher = self.batchers.pop(key, None) or Batcher(self, loaded, params)
        self.batchers[key] = batcher  # dicts keep insertion order: last = most recent
        while len(self.batchers) > self.settings.max_batchers:
            idle = next((k for k, b in self.batchers.items() if not b.items and not b.draining),
                        None)
            if idle is None or idle == key:
                break
            del self.batchers[idle]
        return batcher

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
