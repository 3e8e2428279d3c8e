"""Shared benchmark plumbing: thread pinning, medians, load average, and one result row format.

Every benchmark module exposes `run(quick: bool = False) -> list[Row]` (used by `make bench`,
`bench/run_all.py`) and a `main()` that prints its rows when run on its own. A row is one ratio or
figure with the correctness check measured in the same run printed next to it.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


def pin_threads(n: int = 1) -> None:
    """Pin numeric threads before numpy/torch/xgboost start their pools (2 busy threads on 2
    shared cores ran up to 15x slower than 1)."""
    for var in ("EAAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Row:
    """One benchmark figure: `value` in `unit`, the goals as text, and its correctness check."""

    id: str  # e.g. "P1-xgb-d6", "T-120w", "L-tabular-p95"
    what: str
    value: float
    unit: str  # "ratio", "x", "s", "ms", "req/s", ...
    must: str = ""  # e.g. "<= 0.4"
    moonshot: str = ""
    check: str = ""  # e.g. "max |ours - native| 3e-7 (float32 ok)"
    met: bool | None = None  # must met? None when the row has no goal
    moon: bool | None = None  # moonshot met?

    def line(self) -> str:
        goal = f" must {self.must}" if self.must else ""
        goal += f" moonshot {self.moonshot}" if self.moonshot else ""
        verdict = {True: "MET", False: "MISSED", None: ""}[self.met]
        if self.moon:
            verdict += " (moonshot)"
        return (f"{self.id:<22} {self.value:>10.4g} {self.unit:<6} {verdict:<18}"
                f"{goal:<32} {self.what} | check: {self.check}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(value: float, must: str, moonshot: str = "") -> tuple[bool | None, bool | None]:
    """Evaluate goals written as '<= 0.4' or '>= 1.6'."""

    def ok(goal: str) -> bool | None:
        if not goal:
            return None
        op, num = goal.split()
        return value <= float(num) if op == "<=" else value >= float(num)

    return ok(must), ok(moonshot)


def row(id: str, what: str, value: float, unit: str, must: str = "", moonshot: str = "",
        check: str = "") -> Row:
    met, moon = judge(value, must, moonshot)
    return Row(id, what, float(value), unit, must, moonshot, check, met, moon)


def median_time(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def interleaved(
    fns: dict[str, Callable[[], Any]], rounds: int = 5, warmup: bool = True
) -> dict[str, float]:
    """Median seconds of each function, timed in alternating rounds so that load drift on a
    shared machine hits all of them alike; `warmup=False` when the callers are already warm."""
    for f in fns.values() if warmup else ():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def print_rows(rows: list[Row]) -> None:
    for r in rows:
        print(r.line(), flush=True)


def dump(rows: list[Row], path: str) -> None:
    with open(path, "w") as fh:
        json.dump([r.to_dict() for r in rows], fh, indent=2)
