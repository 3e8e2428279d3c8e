"""The tabular game and the Owen values of shap's Partition recursion, on arrays.

`masked_values` is the interventional game of a tabular model: the features outside a
coalition take the background's values, averaged over the background rows. The model is called
on arrays, a few large batches per row (every masked row of a row's coalitions at once), never
once per coalition. The Shapley estimators over any game are in `explain/shapley.py`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

Fn = Callable[[np.ndarray], np.ndarray]  # (rows, features) -> (rows, outputs)
# model calls (the row, a chunk of masks) run elsewhere, results in order (api/ray_fanout.py)
Spread = Callable[[list[tuple[np.ndarray, np.ndarray]], Any], list[np.ndarray]]
MAX_ROWS_PER_CALL = 16_384  # masked rows per model call: large batches, bounded memory


def masked_values(fn: Fn, x: np.ndarray, masks: np.ndarray, bg: np.ndarray,
                  rows_per_call: int = MAX_ROWS_PER_CALL,
                  spread: Spread | None = None) -> np.ndarray:
    """v(S) = mean over background rows b of f(x_S, b_rest), for every mask S: (masks, outputs).

    The masked rows are built feature-major, so the frame the model gets wraps them without a
    copy, in chunks of ~16k rows: measured here, larger chunks ran slower (fresh memory per
    call), smaller ones pay the model's per-call overhead. A model on typed frames (a pipeline
    whose coded rows are decoded per call) asks for larger calls: 4x measured 10-20% faster.
    """
    nb, nf = bg.shape
    per_call = max(1, rows_per_call // nb)
    if spread is not None and len(masks) > per_call:
        # the same model calls, each of the same masks, run elsewhere: the same numbers
        calls = [(x, masks[i : i + per_call]) for i in range(0, len(masks), per_call)]
        return np.concatenate(spread(calls, None))
    bg_t = np.ascontiguousarray(bg.T)[:, None, :]  # (features, 1, background)
    out = []
    for i in range(0, len(masks), per_call):
        m = np.ascontiguousarray(masks[i : i + per_call].T)[:, :, None]
        rows = np.where(m, x[:, None, None], bg_t).reshape(nf, -1)
        f = fn(rows.T)
        out.append(f.reshape(m.shape[1], nb, -1).mean(axis=1))
    return np.concatenate(out) if out else np.zeros((0, 0))


def cluster_masks(clustering: np.ndarray, nf: int) -> np.ndarray:
    """(2 nf - 1, nf) bool: the features under each node of a shap clustering (scipy linkage)."""
    masks = np.zeros((nf + len(clustering), nf), dtype=bool)
    masks[np.arange(nf), np.arange(nf)] = True
    for i, (left, right) in enumerate(clustering[:, :2].astype(int)):
        masks[nf + i] = masks[left] | masks[right]
    return masks


def partition_shap(fn: Fn, x: np.ndarray, bg: np.ndarray, base: np.ndarray, fx: np.ndarray,
                   max_evals: int, clustering: np.ndarray, masks_of: np.ndarray,
                   batch: int, rows_per_call: int = MAX_ROWS_PER_CALL) -> np.ndarray:
    """(outputs, features) Owen values over the clustering: shap's PartitionExplainer recursion
    (the same priority order, budget and credit split), with ties broken by insertion order
    instead of numpy's global generator, and `batch` masks per model call. Masks are Python
    ints and leaf credits are added at the end: the bookkeeping stays small next to the model."""
    nf = len(x)
    bits = _as_bits(masks_of)
    lefts, rights = clustering[:, 0].astype(int).tolist(), clustering[:, 1].astype(int).tolist()
    dists = clustering[:, 2].tolist()
    done: list[tuple] = []  # (node, f00, f11, weight) whose credit is final
    heap = [(0.0, 0, (0, base, fx, len(masks_of) - 1, 1.0))]
    seq, evals, budget = 1, 0, max_evals - 2
    while heap:
        if evals >= budget:  # out of budget: what is left stays on the internal nodes
            done += [(a[3], a[1], a[2], a[4]) for _, _, a in heap]
            break
        todo: list[tuple] = []
        bm: list[int] = []  # masks as Python ints, two per node
        while heap and len(bm) < batch and evals + len(bm) < budget:
            m00, f00, f11, ind, w = heapq.heappop(heap)[2]
            if ind < nf or dists[ind - nf] < 0:
                done.append((ind, f00, f11, w))
                continue
            left, right = lefts[ind - nf], rights[ind - nf]
            m10, m01 = m00 | bits[left], m00 | bits[right]
            todo.append((m00, m10, m01, f00, f11, left, right, w / 2))
            bm += [m10, m01]
        if not todo:
            continue
        fout = masked_values(fn, x, _from_bits(bm, nf), bg, rows_per_call)
        evals += len(bm)
        f00s, f11s = np.array([t[3] for t in todo]), np.array([t[4] for t in todo])
        f10s, f01s = fout[0::2], fout[1::2]
        # the four children's priorities, for the whole batch at once
        gaps = np.stack([f10s - f00s, f01s - f00s, f11s - f01s, f11s - f10s], axis=1)
        pri = (-np.abs(gaps).max(axis=2) * np.array([t[7] for t in todo])[:, None]).tolist()
        for i, (m00, m10, m01, f00, f11, left, right, w) in enumerate(todo):
            f10, f01 = f10s[i], f01s[i]
            kids = ((m00, f00, f10, left, w), (m00, f00, f01, right, w),
                    (m01, f01, f11, left, w), (m10, f10, f11, right, w))
            for j, args in enumerate(kids):
                heapq.heappush(heap, (pri[i][j], seq, args))
                seq += 1
    dvalues = np.zeros((len(masks_of), len(base)))
    if done:
        gain = np.array([d[2] for d in done]) - np.array([d[1] for d in done])
        np.add.at(dvalues, [d[0] for d in done], gain * np.array([d[3] for d in done])[:, None])
    return _lower_credit(dvalues, clustering, nf)[:nf].T


def _as_bits(masks: np.ndarray) -> list[int]:
    """Bool mask rows -> Python ints (bit j = feature j)."""
    return [int(sum(1 << int(j) for j in np.flatnonzero(m))) for m in masks]


def _from_bits(ints: list[int], nf: int) -> np.ndarray:
    """Python-int masks -> (masks, nf) bool."""
    if nf <= 62:
        a = np.array(ints, dtype=np.int64)
        return ((a[:, None] >> np.arange(nf, dtype=np.int64)) & 1).astype(bool)
    return np.array([[(m >> j) & 1 for j in range(nf)] for m in ints], dtype=bool)


def _lower_credit(dvalues: np.ndarray, clustering: np.ndarray, nf: int) -> np.ndarray:
    """Pass each internal node's credit down to its children in proportion to their sizes."""
    values = dvalues.copy()
    size = np.concatenate([np.ones(nf), clustering[:, 3]])
    stack = [len(values) - 1]
    while stack:
        i = stack.pop()
        if i < nf:
            continue
        left, right = int(clustering[i - nf, 0]), int(clustering[i - nf, 1])
        values[left] += values[i] * size[left] / size[i]
        values[right] += values[i] * size[right] / size[i]
        stack += [left, right]
    return values
