"""Explanation execution: LRU cache, micro-batching and a bounded thread pool.

Work never runs on the event loop. Concurrent requests for the same explainer and parameters
are coalesced into one engine call: an idle explainer takes a request at once (after an optional
`batch_window_ms` wait for company); while its batch runs, arrivals join the next one (up to
`max_batch` instances), so batches grow with load and add no latency when there is none.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from cachetools import LRUCache

from api.errors import PayloadTooLarge, Unavailable
from api.metrics import Metrics
from api.settings import ServeSettings
from api.store import Loaded
from explain.errors import Stopped
from explain.text_budget import request_cost
from explain.validation import check_params

log = logging.getLogger("eaas.api")
Item = tuple[list[Any], asyncio.Future]


def _digest(instance: Any) -> str:
    return hashlib.sha256(json.dumps(instance, sort_keys=True).encode()).hexdigest()


CHUNK = 4  # tabular instances between two checks for abandoned work (text: one, and within)


class Abandoned(Exception):
    """Every request waiting for this batch has given up (time budget): stop early."""


def run_engine(
    loaded: Loaded,
    instances: list[Any],
    params: dict[str, Any],
    abandoned: Callable[[], bool] = lambda: False,
) -> list[dict]:
    """The same engine call the pyfunc's predict makes; one dict per instance.

    Runs in chunks so that timed-out work stops within a chunk instead of holding a thread;
    text explanations also poll `abandoned` before every model forward batch. Results do not
    depend on chunking (rows are explained independently of their batch).
    """
    cfg = loaded.engine.config
    if cfg.kind == "text":
        df = pd.DataFrame({"text": instances})
    else:  # validated numbers or None (-> NaN); one array, not a record-by-record frame
        rows = [[inst.get(f) for f in cfg.features] for inst in instances]
        df = pd.DataFrame(np.array(rows, dtype=float), columns=cfg.features)
    chunk = 1 if cfg.kind == "text" else CHUNK
    records: list[dict] = []
    for start in range(0, len(df), chunk):
        if abandoned():
            raise Abandoned()
        try:
            records += loaded.engine.explain_records(
                df.iloc[start : start + chunk], params, stop=abandoned
            )
        except Stopped:
            raise Abandoned() from None
    if cfg.kind == "tabular":  # JSON has no NaN: a missing input value goes back as null
        for r in records:
            r["data"] = [None if v != v else v for v in r["data"]]
    return records


class Batcher:
    """Coalesces submissions for one (explainer version, parameters) pair."""

    def __init__(self, owner: Executor, loaded: Loaded, params: dict[str, Any]) -> None:
        self.owner, self.loaded, self.params = owner, loaded, params
        self.items: list[Item] = []
        self.draining = False
        self.slot = owner.engine_slot(
            loaded.key, getattr(loaded.engine.impl, "reentrant", False)
        )

    async def submit(self, instances: list[Any]) -> list[dict]:
        fut = asyncio.get_running_loop().create_future()
        self.items.append((instances, fut))
        if not self.draining:
            self.draining = True
            asyncio.create_task(self._drain())
        return await fut

    def _take(self) -> list[Item]:
        batch, n = [], 0
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

    async def _run(self, batch: list[Item]) -> None:
        rows = [x for instances, _ in batch for x in instances]
        try:
            futures = [fut for _, fut in batch]
            try:
                results = await self.owner.call(
                    self.loaded, rows, self.params, lambda: all(f.done() for f in futures)
                )
                parts, start = [], 0
                for instances, _ in batch:
                    parts.append(results[start : start + len(instances)])
                    start += len(instances)
            except Abandoned:
                self.owner.metrics.abandoned.inc()
                parts = [Abandoned()] * len(batch)
            except Exception:
                # one request's failure must not fail the others coalesced with it
                parts = await self._one_by_one(batch)
        finally:
            self.slot.release()
        for (instances, fut), part in zip(batch, parts, strict=True):
            self.owner.release(len(instances))
            if fut.done():
                continue
            if isinstance(part, Exception):
                fut.set_exception(part)
            else:
                fut.set_result(part)

    async def _one_by_one(self, batch: list[Item]) -> list[Any]:
        out: list[Any] = []
        for instances, _ in batch:
            try:
                out.append(await self.owner.call(self.loaded, instances, self.params))
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
        self, loaded: Loaded, rows: list[Any], params: dict, abandoned=lambda: False
    ) -> list[dict]:
        self.metrics.batch_size.labels(loaded.model["name"]).observe(len(rows))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, run_engine, loaded, rows, params, abandoned)

    def engine_slot(self, key: str, reentrant: bool = False) -> asyncio.Semaphore:
        """One running batch per explainer, or one per executor thread for a re-entrant (text)
        engine: a light request then runs beside a heavy one instead of waiting behind it.
        The pool bounds threads across explainers."""
        n = self.settings.executor_threads if reentrant else 1
        return self.slots.setdefault(key, asyncio.Semaphore(n))

    def check_cost(self, loaded: Loaded, instances: list[Any], params: dict) -> None:
        """Refuse (413) a text request whose words x evaluations could never finish in the
        time budget, before any work starts."""
        limit, cfg = self.settings.max_request_cost, loaded.engine.config
        if not limit or cfg.kind != "text":
            return
        p = check_params(params, cfg.defaults)
        cost = request_cost(cfg.method, [str(x) for x in instances], p.max_evals)
        if cost > limit:
            raise PayloadTooLarge(
                f"instances: estimated cost {cost} (words x evaluations) is over the limit "
                f"max_request_cost={limit} (EAAS_MAX_REQUEST_COST)"
            )

    def release(self, n: int) -> None:
        self.pending -= n
        self.metrics.queue.set(self.pending)

    async def explain(self, loaded: Loaded, instances: list[Any], params: dict) -> list[dict]:
        self.check_cost(loaded, instances, params)
        pkey = json.dumps(params, sort_keys=True)
        keys = [(loaded.key, pkey, _digest(x)) for x in instances]
        out: list[dict | None] = [
            self.cache.get(k) if self.cache is not None else None for k in keys
        ]
        todo = [i for i, r in enumerate(out) if r is None]
        self.metrics.cache.labels("hit").inc(len(instances) - len(todo))
        self.metrics.cache.labels("miss").inc(len(todo))
        if todo:
            if self.pending + len(todo) > self.settings.max_queue:
                raise Unavailable("server busy: explanation queue is full", retry_after=1)
            self.pending += len(todo)
            self.metrics.queue.set(self.pending)
            batcher = self.batchers.get((loaded.key, pkey))
            if batcher is None:
                batcher = self.batchers[(loaded.key, pkey)] = Batcher(self, loaded, params)
            fresh = await batcher.submit([instances[i] for i in todo])
            for i, r in zip(todo, fresh, strict=True):
                out[i] = r
                if self.cache is not None:
                    self.cache[keys[i]] = r
        return [r for r in out if r is not None]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
