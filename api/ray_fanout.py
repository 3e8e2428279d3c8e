"""One heavy explanation spread over the Ray cluster (`eaas serve --ray`, EAAS_RAY_FANOUT=N).

A text explanation's model evaluations are independent. The method groups them into forward
batches exactly as it would run them here (`TextForward.probs`: sorted by length, cut into
batches), and a `RaySpread` runs those same batches on N `BatchWorker` actors (each holding the
same explainer version, loaded from the registry by its URI) and on this replica, in contiguous
shares. The batches are the same, so the numbers are the same as a local run; only where each
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
    """A Ray actor: one explainer version, running the evaluation batches it is sent."""

    def __init__(self, uri: str) -> None:
        self.engine = load_explainer(uri, settings=CoreSettings())

    def run(self, batches: list[Any]) -> list[np.ndarray]:
        return [self.engine.method.run_batch(b) for b in batches]


def shares(n: int, parts: int) -> list[tuple[int, int]]:
    """`n` batches cut into at most `parts` contiguous [a, b) ranges of near-equal size."""
    parts = max(1, min(parts, n))
    cuts = [round(i * n / parts) for i in range(parts + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(parts)]


class RaySpread:
    """`spread(batches, stop)`: this replica runs the first share, the workers the others."""

    def __init__(self, engine: Engine, uri: str, workers: int, cpus: float) -> None:
        import ray

        self.engine = engine
        actor = ray.remote(num_cpus=cpus)(BatchWorker)
        # SPREAD: the workers go to other nodes where they can, not next to this replica
        self.workers: list[Any] = [actor.options(scheduling_strategy="SPREAD").remote(uri)
                        for _ in range(workers)]  # fmt: skip

    def __call__(self, batches: list[Any], stop: Stop | None = None) -> list[np.ndarray]:
        import ray

        ranges = shares(len(batches), len(self.workers) + 1)
        # fewer batches than workers + 1: the spare workers get nothing
        refs = [w.run.remote(batches[a:b])
                for w, (a, b) in zip(self.workers, ranges[1:], strict=False)]  # fmt: skip
        a, b = ranges[0]
        mine = []
        for batch in batches[a:b]:
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
        rest = [r for part in ray.get(refs) for r in part]
        return mine + rest


def fanout_loader(settings: CoreSettings, workers: int, cpus: float) -> Any:
    """The repository's loader on a Ray replica: each explainer whose method has evaluation
    batches to spread gets `workers` batch workers."""

    def load(uri: str) -> Engine:
        engine = load_explainer(uri, settings=settings)
        if workers > 0:
            spread = RaySpread(engine, uri, workers, cpus)
            if not engine.method.spread_to(spread):
                for w in spread.workers:  # nothing to spread: do not hold their CPUs
                    __import__("ray").kill(w)
        return engine

    return load
