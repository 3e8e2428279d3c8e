"""Permutation and Kernel SHAP over arrays, with a per-row seeded generator.

No global random state: each row draws from its own `np.random.Generator` seeded with the
request's seed, so a row's numbers depend neither on its batch nor on other threads or models.
The model is called on arrays, a few large batches per row (every masked row of a row's
coalitions at once), never once per coalition.

- permutation: antithetic permutations (each permutation is walked forward, switching features
  on, then backward, switching them off in the same order). Every walk telescopes from
  E[f(background)] to f(x), so the values add up exactly.
- kernel: Kernel SHAP's weighted least squares, with the sum constrained to f(x) - E[f]. Whole
  coalition sizes are enumerated (smallest and largest first) while the budget allows; the rest
  is sampled in complementary pairs. With the budget for every coalition it is exact.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from math import comb

import numpy as np

from eaas.explain.errors import InvalidInput

Fn = Callable[[np.ndarray], np.ndarray]  # (rows, features) -> (rows, outputs)
MAX_ROWS_PER_CALL = 16_384  # masked rows per model call: large batches, bounded memory


def row_rng(seed: int) -> np.random.Generator:
    """A fresh generator per row; numpy seeds are 0 <= seed < 2**32 here, as before."""
    if not 0 <= seed < 2**32:
        raise InvalidInput("seed: must be between 0 and 4294967295", field="seed")
    return np.random.default_rng(seed)


def masked_values(fn: Fn, x: np.ndarray, masks: np.ndarray, bg: np.ndarray,
                  rows_per_call: int = MAX_ROWS_PER_CALL) -> np.ndarray:
    """v(S) = mean over background rows b of f(x_S, b_rest), for every mask S: (masks, outputs).

    The masked rows are built feature-major, so the frame the model gets wraps them without a
    copy, in chunks of ~16k rows: measured here, larger chunks ran slower (fresh memory per
    call), smaller ones pay the model's per-call overhead. A model on typed frames (a pipeline
    whose coded rows are decoded per call) asks for larger calls: 4x measured 10-20% faster.
    """
    nb, nf = bg.shape
    bg_t = np.ascontiguousarray(bg.T)[:, None, :]  # (features, 1, background)
    per_call = max(1, rows_per_call // nb)
    out = []
    for i in range(0, len(masks), per_call):
        m = np.ascontiguousarray(masks[i : i + per_call].T)[:, :, None]
        rows = np.where(m, x[:, None, None], bg_t).reshape(nf, -1)
        f = fn(rows.T)
        out.append(f.reshape(m.shape[1], nb, -1).mean(axis=1))
    return np.concatenate(out) if out else np.zeros((0, 0))


def with_top(fn: Fn, x: np.ndarray, masks: np.ndarray, bg: np.ndarray,
             rows_per_call: int = MAX_ROWS_PER_CALL) -> tuple[np.ndarray, np.ndarray]:
    """(v(S) for every mask, f(x)): the all-on coalition is evaluated in the same model call as
    the row's first masks, so f(x) costs no call of its own (a pipeline's per-call overhead is
    ~4 ms) and its rounding depends on the row alone, never on the rows explained beside it."""
    top = np.ones((1, len(x)), dtype=bool)
    out = masked_values(fn, x, np.vstack([top, masks]), bg, rows_per_call)
    return out[1:], out[0]


def masks_none(nf: int) -> np.ndarray:
    return np.zeros((0, nf), dtype=bool)


def permutation_masks(rng: np.random.Generator, nf: int, max_evals: int):
    """Permutations and the masks their forward and backward walks pass through (endpoints left
    out: all off is E[f], all on is f(x))."""
    n_perm = max(1, max_evals // (2 * nf + 1))
    perms = np.stack([rng.permutation(nf) for _ in range(n_perm)])
    ranks = np.empty_like(perms)
    ranks[np.arange(n_perm)[:, None], perms] = np.arange(nf)
    steps = np.arange(nf - 1)  # after switching on the first j + 1 features of the order
    fwd = ranks[:, None, :] <= steps[None, :, None]  # (P, nf-1, nf)
    return perms, np.concatenate([fwd, ~fwd], axis=1).reshape(-1, nf)


def permutation_shap(fn: Fn, x: np.ndarray, bg: np.ndarray, base: np.ndarray,
                     max_evals: int, rng: np.random.Generator,
                     rows_per_call: int = MAX_ROWS_PER_CALL) -> np.ndarray:
    """(outputs, features) permutation estimate for one row."""
    nf = x.shape[0]
    perms, masks = permutation_masks(rng, nf, max_evals) if nf > 1 else (None, masks_none(nf))
    v, fx = with_top(fn, x, masks, bg, rows_per_call)
    if perms is None:
        return (fx - base)[:, None]
    n_perm = len(perms)
    v = v.reshape(n_perm, 2, nf - 1, -1)
    ends = np.broadcast_to(base, (n_perm, 1, len(base)))
    tops = np.broadcast_to(fx, (n_perm, 1, len(fx)))
    fwd = np.diff(np.concatenate([ends, v[:, 0], tops], axis=1), axis=1)  # on-steps
    bwd = -np.diff(np.concatenate([tops, v[:, 1], ends], axis=1), axis=1)  # off-steps
    phi = np.zeros((nf, len(base)))
    for p in range(n_perm):
        phi[perms[p]] += fwd[p] + bwd[p]
    return (phi / (2 * n_perm)).T


def _kernel_weight(nf: int, s: int) -> float:
    """Kernel SHAP weight of one coalition of size s."""
    return (nf - 1) / (comb(nf, s) * s * (nf - s))


def kernel_masks(rng: np.random.Generator, nf: int, budget: int):
    """Coalitions and their regression weights: whole sizes while they fit, then paired samples
    for the sizes left, weights spread so each size keeps its share of the kernel."""
    sizes = list(range(1, nf // 2 + 1))  # s pairs with nf - s
    masks: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    left = budget
    done: set[int] = set()
    for s in sizes:
        group = {s, nf - s}
        count = sum(comb(nf, g) for g in group)
        if count > left:
            break
        for g in group:
            idx = np.array(list(_combinations(nf, g)), dtype=np.int64)
            m = np.zeros((len(idx), nf), dtype=bool)
            m[np.arange(len(idx))[:, None], idx] = True
            masks.append(m)
            weights.append(np.full(len(idx), _kernel_weight(nf, g)))
        left -= count
        done |= group
    rest = [s for s in sizes if s not in done]
    if rest and left >= 2:
        masks_s, weights_s = _sampled_sizes(rng, nf, rest, left // 2)
        masks.append(masks_s)
        weights.append(weights_s)
    if not masks:
        return np.zeros((0, nf), dtype=bool), np.zeros(0)
    return np.concatenate(masks), np.concatenate(weights)


def _sampled_sizes(rng: np.random.Generator, nf: int, sizes: list[int], pairs: int):
    """`pairs` random coalitions and their complements, a fixed number per size pair
    (stratified, in proportion to the square root of the pair's kernel weight: between the
    kernel's own allocation and leverage-score sampling's uniform one, and measured here to rank
    features better than either); repeats are merged and each size pair keeps exactly its
    share of the weight, so the regression is unchanged in expectation."""
    share = np.array([(nf - 1) / (s * (nf - s)) * (1 if 2 * s == nf else 2) for s in sizes])
    target = np.sqrt(share) / np.sqrt(share).sum() * pairs
    alloc = np.floor(target).astype(int)
    order = np.argsort(-(target - alloc))
    alloc[order[: pairs - alloc.sum()]] += 1
    out_m, out_w = [], []
    for s, n, w in zip(sizes, alloc, share, strict=True):
        if n == 0:
            continue
        m = _balanced(rng, nf, s, n)
        m = np.concatenate([m, ~m])
        if nf <= 62:  # one integer per mask: a much cheaper unique than row-wise
            keys = m @ (np.int64(1) << np.arange(nf, dtype=np.int64))
            _, first, counts = np.unique(keys, return_index=True, return_counts=True)
            m = m[first]
        else:
            m, counts = np.unique(m, axis=0, return_counts=True)
        out_m.append(m)
        out_w.append(counts * w / counts.sum())
    return np.concatenate(out_m), np.concatenate(out_w)


def _balanced(rng: np.random.Generator, nf: int, s: int, n: int) -> np.ndarray:
    """n coalitions of size s cut from random permutations, nf // s per permutation, so every
    feature is drawn about equally often (less variance than independent draws)."""
    per = nf // s
    perms = np.argsort(rng.random((-(-n // per), nf)), axis=1)[:, : per * s]
    blocks = perms.reshape(-1, s)[:n]
    m = np.zeros((n, nf), dtype=bool)
    m[np.arange(n)[:, None], blocks] = True
    return m


def _combinations(n: int, k: int):
    from itertools import combinations

    return combinations(range(n), k)


def kernel_shap(fn: Fn, x: np.ndarray, bg: np.ndarray, base: np.ndarray,
                max_evals: int, rng: np.random.Generator,
                rows_per_call: int = MAX_ROWS_PER_CALL) -> np.ndarray:
    """(outputs, features) Kernel SHAP for one row, constrained to sum to f(x) - E[f]."""
    nf = x.shape[0]
    masks, w = kernel_masks(rng, nf, min(max_evals, 2**nf) - 2) if nf > 1 else (
        masks_none(nf), np.zeros(0))
    v, fx = with_top(fn, x, masks, bg, rows_per_call)
    total = fx - base
    if nf == 1:
        return total[:, None]
    if len(masks) == 0:
        return np.tile(total[:, None] / nf, (1, nf))
    y = v - base  # (m, outputs)
    z = masks.astype(float)
    # eliminate the last feature: phi_last = total - sum(others)
    a = z[:, :-1] - z[:, -1:]
    b = y - z[:, -1:] * total[None, :]
    if len(masks) >= 2 * nf:  # normal equations: small work instead of an SVD of the design
        aw = a * w[:, None]
        head = np.linalg.solve(aw.T @ a, aw.T @ b)
    else:  # few coalitions: possibly rank-deficient, least squares with minimum norm
        sw = np.sqrt(w)[:, None]
        head, *_ = np.linalg.lstsq(a * sw, b * sw, rcond=None)
    phi = np.vstack([head, total[None, :] - head.sum(axis=0, keepdims=True)])
    return phi.T


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
