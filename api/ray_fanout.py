"""One heavy explanation spread over the Ray cluster (`eaas serve --ray`, EAAS_RAY_FANOUT=N).

A text explanation's model evaluations are independent. The method groups them into forward
batches exactly as it would run them here (`TextForward.probs`: sorted by length, cut into
batches), and a `RaySpread` runs those same batches on N `BatchWorker` actors (each holding the
same explainer version, loaded from the registry by its URI) and on this replica, the batches
dealt in turn. The batches are the same, so the numbers are the same as a local run; only where each
batch runs changes. The stop is polled before the local share and while waiting for the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from eaas.explain.engine import Engine
from eaas.explain.errors import Stop, Stopped
from eaas.explain.pyfunc import load_explainer
from eaas.explain.settings import CoreSettings

log = logging.getLogger("eaas.api")
WAIT_S = 0.05  # how often the stop is polled while remote shares run


class BatchWorker:
    """A Ray actor: runs the evaluation batches it is sent with the explainer version named
    (loaded from the registry on first use, the most recent few kept)."""

    def __init__(self, keep: int = 4) -> None:
        from collections import OrderedDict

        self.engines: OrderedDict[str, Engine] = OrderedDict()
        self.keep = keep

    def run(self, uri: str, batches: list[Any]) -> list[np.ndarray]:
        engine = self.engines.pop(uri, None) or load_explainer(uri, settings=CoreSettings())
        self.engines[uri] = engine
        while len(self.engines) > self.keep:
            self.engines.popitem(last=False)
        return [engine.method.run_batch(b) for b in batches]


def shares(n: int, parts: int) -> list[list[int]]:
    """`n` batches dealt to at most `parts` shares in turn (batch i to share i mod parts): the
    batches come sorted by length, so contiguous shares would leave the longest all to one."""
    parts = max(1, min(parts, n))
    return [list(range(p, n, parts)) for p in range(parts)]


class RaySpread:
    """`spread(batches, stop)` for one explainer: this replica runs the first share, the
    replica's batch workers (shared by its explainers) the others."""

    def __init__(self, engine: Engine, uri: str, workers: list[Any]) -> None:
        self.engine, self.uri, self.workers = engine, uri, workers

    def __call__(self, batches: list[Any], stop: Stop | None = None) -> list[np.ndarray]:
        import ray

        dealt = shares(len(batches), len(self.workers) + 1)
        # fewer batches than workers + 1: the spare workers get nothing
        refs = [w.run.remote(self.uri, [batches[i] for i in idx])
                for w, idx in zip(self.workers, dealt[1:], strict=False)]  # fmt: skip
        mine = []
        for batch in (batches[i] for i in dealt[0]):
            if stop is not None and stop():
                raise Stopped("explanation stopped: its time budget ran out")
            mine.append(self.engine.method.run_batch(batch))
        pending = list(refs)
        while pending:
            if stop is not None and stop():
                for ref in pending:
                    ray.cancel(ref)
                raise Stopped("explanation stopped: its time budget ran out")
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=WAIT_S)
        out: list[np.ndarray] = [np.empty(0)] * len(batches)
        for idx, part in zip(dealt, [mine, *ray.get(refs)], strict=True):
            for i, r in zip(idx, part, strict=True):
                out[i] = r
        return out


def fanout_loader(settings: CoreSettings, workers: int, cpus: float) -> Any:
    """The repository's loader on a Ray replica: the replica starts `workers` batch workers
    (SPREAD: on other nodes where it can), and every explainer whose method has evaluation
    batches to spread runs them through those."""
    import ray

    actor = ray.remote(num_cpus=cpus)(BatchWorker)
    pool: list[Any] = [actor.options(scheduling_strategy="SPREAD").remote()
                       for _ in range(workers)]  # fmt: skip

    def load(uri: str) -> Engine:
        engine = load_explainer(uri, settings=settings)
        if pool:
            engine.method.spread_to(RaySpread(engine, uri, pool))
        return engine

    return load
