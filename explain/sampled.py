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

from collections.abc import Callable
from math import comb

import numpy as np

from explain.errors import InvalidInput

Fn = Callable[[np.ndarray], np.ndarray]  # (rows, features) -> (rows, outputs)
MAX_ROWS_PER_CALL = 16_384  # masked rows per model call: large batches, bounded memory


def row_rng(seed: int) -> np.random.Generator:
    """A fresh generator per row; numpy seeds are 0 <= seed < 2**32 here, as before."""
    if not 0 <= seed < 2**32:
        raise InvalidInput("seed: must be between 0 and 4294967295", field="seed")
    return np.random.default_rng(seed)


def masked_values(fn: Fn, x: np.ndarray, masks: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """v(S) = mean over background rows b of f(x_S, b_rest), for every mask S: (masks, outputs).

    The masked rows are built feature-major, so the frame the model gets wraps them without a
    copy, in chunks of ~16k rows: measured here, larger chunks ran slower (fresh memory per
    call), smaller ones pay the model's per-call overhead.
    """
    nb, nf = bg.shape
    bg_t = np.ascontiguousarray(bg.T)[:, None, :]  # (features, 1, background)
    per_call = max(1, MAX_ROWS_PER_CALL // nb)
    out = []
    for i in range(0, len(masks), per_call):
        m = np.ascontiguousarray(masks[i : i + per_call].T)[:, :, None]
        rows = np.where(m, x[:, None, None], bg_t).reshape(nf, -1)
        f = fn(rows.T)
        out.append(f.reshape(m.shape[1], nb, -1).mean(axis=1))
    return np.concatenate(out) if out else np.zeros((0, 0))


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


def permutation_shap(fn: Fn, x: np.ndarray, bg: np.ndarray, base: np.ndarray, fx: np.ndarray,
                     max_evals: int, rng: np.random.Generator) -> np.ndarray:
    """(outputs, features) permutation estimate for one row."""
    nf = x.shape[0]
    if nf == 1:
        return (fx - base)[:, None]
    perms, masks = permutation_masks(rng, nf, max_evals)
    n_perm = len(perms)
    v = masked_values(fn, x, masks, bg).reshape(n_perm, 2, nf - 1, -1)
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
        uniq, counts = np.unique(m, axis=0, return_counts=True)
        out_m.append(uniq)
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


def kernel_shap(fn: Fn, x: np.ndarray, bg: np.ndarray, base: np.ndarray, fx: np.ndarray,
                max_evals: int, rng: np.random.Generator) -> np.ndarray:
    """(outputs, features) Kernel SHAP for one row, constrained to sum to f(x) - E[f]."""
    nf = x.shape[0]
    total = fx - base
    if nf == 1:
        return total[:, None]
    masks, w = kernel_masks(rng, nf, min(max_evals, 2**nf) - 2)
    if len(masks) == 0:
        return np.tile(total[:, None] / nf, (1, nf))
    y = masked_values(fn, x, masks, bg) - base  # (m, outputs)
    z = masks.astype(float)
    # eliminate the last feature: phi_last = total - sum(others)
    a = z[:, :-1] - z[:, -1:]
    b = y - z[:, -1:] * total[None, :]
    sw = np.sqrt(w)[:, None]
    head, *_ = np.linalg.lstsq(a * sw, b * sw, rcond=None)
    phi = np.vstack([head, total[None, :] - head.sum(axis=0, keepdims=True)])
    return phi.T
