"""Explain the batch in one call, else row by row: one bad row never fails the others.

Used by the Spark worker (batch/worker.py) and meant for every caller that batches rows of
different origins (the service's micro-batcher does the same per request).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def batch_else_rows(
    call: Callable[[list[T]], Sequence[R]], items: list[T]
) -> list[R | BaseException]:
    """`call(items)` once; if it fails (or returns the wrong count), `call([x])` per item.

    Returns one result per item, in order: its output, or the exception its own call raised.
    """
    if not items:
        return []
    try:
        out: list[R | BaseException] = list(call(items))
        if len(out) == len(items):
            return out
    except Exception:  # isolate the culprit(s): the rest is still explained
        pass
    results: list[R | BaseException] = []
    for x in items:
        try:
            one = list(call([x]))
            if len(one) != 1:
                raise RuntimeError(f"explainer returned {len(one)} rows for 1")
            results.append(one[0])
        except Exception as exc:
            results.append(exc)
    return results
