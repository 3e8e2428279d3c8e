"""Which coalitions Kernel SHAP evaluates, and with what weights.

Whole coalition sizes are enumerated (smallest and largest first) while the budget allows; the
sizes left are sampled in complementary pairs, a fixed number per size pair (stratified, in
proportion to the square root of the pair's kernel weight: between the kernel's own allocation
and leverage-score sampling's uniform one, measured here to rank features better than either).
Repeats are merged and each size pair keeps exactly its share of the weight, so the regression
is unchanged in expectation. `grow` adds pairs to the sampled sizes (a tolerance's next round);
the first round is exactly what the method drew before tolerances existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from math import comb

import numpy as np


def kernel_weight(nf: int, s: int) -> float:
    """Kernel SHAP weight of one coalition of size s."""
    return (nf - 1) / (comb(nf, s) * s * (nf - s))


@dataclass
class Unit:
    """The sampled pairs of one group of sizes, for the variance: rows of each pair (n, 2) in
    the regression's masks, each pair's weight, and its cluster (the pairs cut from one
    permutation are drawn together, so they are one independent draw)."""

    rows: np.ndarray
    weight: np.ndarray
    cluster: np.ndarray  # nondecreasing and contiguous within a unit

    @property
    def draws(self) -> int:
        return int(self.cluster[-1] - self.cluster[0] + 1)


@dataclass
class KernelDesign:
    nf: int
    fixed: np.ndarray  # enumerated coalitions (exact: no variance)
    fixed_w: np.ndarray
    sizes: list[int]  # sampled sizes s (each paired with nf - s)
    share: np.ndarray  # each sampled size pair's share of the kernel weight
    draws: list[list[np.ndarray]] = field(default_factory=list)  # per size: (n, nf) per round

    @classmethod
    def start(cls, rng: np.random.Generator, nf: int, budget: int) -> KernelDesign:
        sizes = list(range(1, nf // 2 + 1))  # s pairs with nf - s
        share = np.array([(nf - 1) / (s * (nf - s)) * (1 if 2 * s == nf else 2) for s in sizes])
        design = cls(nf, np.zeros((0, nf), dtype=bool), np.zeros(0), sizes, share,
                     [[] for _ in sizes])
        design.grow(rng, budget)
        return design

    def grow(self, rng: np.random.Generator, left: int) -> bool:
        """Spend about `left` more evaluations: whole sizes first, smallest (and largest)
        first, while they fit (the coalitions already drawn from a size are not counted
        again: they are evaluated), then pairs over the sizes still sampled. False when
        nothing can be added."""
        grew = False
        while self.sizes:
            s, nf = self.sizes[0], self.nf
            group = {s, nf - s}  # iterated as before: the same rows, the same rounding
            new = sum(comb(nf, g) for g in group) - self._drawn(0)
            if new > left:
                break
            self._enumerate(group)
            left -= new
            grew = True
        pairs = left // 2
        if not self.sizes or pairs < 1:
            return grew
        target = np.sqrt(self.share) / np.sqrt(self.share).sum() * pairs
        alloc = np.floor(target).astype(int)
        order = np.argsort(-(target - alloc))
        alloc[order[: pairs - alloc.sum()]] += 1
        for i, (s, n) in enumerate(zip(self.sizes, alloc, strict=True)):
            if n:
                self.draws[i].append(_balanced(rng, self.nf, s, int(n)))
        return True

    def _drawn(self, i: int) -> int:
        """Distinct coalitions (draws and their complements) already drawn from size `i`."""
        if not self.draws[i]:
            return 0
        d = np.concatenate(self.draws[i])
        return len(_unique(np.concatenate([d, ~d]))[0])

    def _enumerate(self, group: set[int]) -> None:
        """Every coalition of the sizes in `group`, at their exact kernel weights; the size
        pair leaves the sampled ones."""
        nf = self.nf
        for g in group:
            idx = np.array(list(combinations(range(nf), g)), dtype=np.int64)
            m = np.zeros((len(idx), nf), dtype=bool)
            m[np.arange(len(idx))[:, None], idx] = True
            self.fixed = np.concatenate([self.fixed, m])
            self.fixed_w = np.concatenate([self.fixed_w, np.full(len(idx), kernel_weight(nf, g))])
        self.sizes, self.share, self.draws = self.sizes[1:], self.share[1:], self.draws[1:]

    def regression(self) -> tuple[np.ndarray, np.ndarray, list[Unit]]:
        """(masks, weights, units): the enumerated coalitions, then each sampled size's unique
        coalitions with their merged weights; `units` groups the sampled pairs for the
        variance (a size drawn once is grouped with the next, a conservative estimate)."""
        masks, weights, units = [self.fixed], [self.fixed_w], []
        offset, clusters = len(self.fixed), 0
        pending: list[Unit] = []
        for s, s_draws, w in zip(self.sizes, self.draws, self.share, strict=True):
            if not s_draws:
                continue
            d = np.concatenate(s_draws)
            n = len(d)
            m, first, inverse, counts = _unique(np.concatenate([d, ~d]))
            masks.append(m)
            weights.append(counts * w / counts.sum())
            rows = np.stack([inverse[:n], inverse[n:]], axis=1) + offset
            cl = _clusters(s_draws, self.nf // s) + clusters
            pending.append(Unit(rows, np.full(n, w / (2 * n)), cl))
            clusters = int(cl[-1]) + 1
            offset += len(m)
            if sum(u.draws for u in pending) >= 2:
                units.append(_joined(pending))
                pending = []
        if pending:  # a last size drawn in one cluster joins the group before it
            units.append(_joined(([units.pop()] if units else []) + pending))
        return np.concatenate(masks), np.concatenate(weights), units


def _clusters(rounds: list[np.ndarray], per: int) -> np.ndarray:
    """Each draw's cluster, 0, 1, ... in order: `per` draws are cut from one permutation in
    each round (`_balanced`), so they share one."""
    out, start = [], 0
    for x in rounds:
        ids = np.arange(len(x)) // per + start
        out.append(ids)
        start = int(ids[-1]) + 1
    return np.concatenate(out)


def _joined(units: list[Unit]) -> Unit:
    return Unit(np.concatenate([u.rows for u in units]),
                np.concatenate([u.weight for u in units]),
                np.concatenate([u.cluster for u in units]))


def _unique(m: np.ndarray):
    """Unique rows (ordered as numpy orders them), first index, inverse, counts."""
    if m.shape[1] <= 62:  # one integer per mask: a much cheaper unique than row-wise
        keys = m @ (np.int64(1) << np.arange(m.shape[1], dtype=np.int64))
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                              return_counts=True)
        return m[first], first, inverse.ravel(), counts
    u, first, inverse, counts = np.unique(m, axis=0, return_index=True, return_inverse=True,
                                          return_counts=True)
    return u, first, inverse.ravel(), counts


def _balanced(rng: np.random.Generator, nf: int, s: int, n: int) -> np.ndarray:
    """n coalitions of size s cut from random permutations, nf // s per permutation, so every
    feature is drawn about equally often (less variance than independent draws)."""
    per = nf // s
    perms = np.argsort(rng.random((-(-n // per), nf)), axis=1)[:, : per * s]
    blocks = perms.reshape(-1, s)[:n]
    m = np.zeros((n, nf), dtype=bool)
    m[np.arange(n)[:, None], blocks] = True
    return m
