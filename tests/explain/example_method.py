"""The worked example of docs/development.md: a new method is one module like this one plus one
line in `explain/methods.py`'s REGISTRY (the test registers it for its own duration).

`enumeration`: exact interventional Shapley values by evaluating every coalition of features
over the background (2^F x background rows in one model call): exact, and only for a few
features, which the method says at build time.
"""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
import pandas as pd

from eaas.explain.errors import UnsupportedModel
from eaas.explain.method import Capabilities
from eaas.explain.source import SourceModel
from eaas.explain.tabular.base import TabularMethod

MAX_FEATURES = 10


class EnumerationMethod(TabularMethod):
    name = "enumeration"
    capabilities = Capabilities(inputs="tabular", exact=True, reentrant=True,
                                needs_background=True)

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        super().__init__(source, background)
        if background is None or len(source.feature_names) > MAX_FEATURES:
            raise UnsupportedModel(
                f"method 'enumeration' needs background data and at most {MAX_FEATURES} features"
            )
        self.bg = background.to_numpy(dtype=float)
        n = len(source.feature_names)
        self.masks = np.array(list(itertools.product([False, True], repeat=n)))  # (2^n, n)

    def _compute(
        self, rows: np.ndarray, max_evals: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=float)  # numbers-only models: checked float rows
        n = rows.shape[1]
        pred = self._f(rows)
        values = np.stack([self._row(r, n) for r in rows])  # (rows, outputs, features)
        base = np.broadcast_to(self._f(self.bg).mean(axis=0), pred.shape).copy()
        return values, base, pred

    def _f(self, arr: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(arr, columns=self.source.feature_names)
        return self.source.predict_output(frame)

    def _row(self, row: np.ndarray, n: int) -> np.ndarray:
        # v(S) for every coalition S: x on S, each background row elsewhere; one model call
        data = np.where(self.masks[:, None, :], row, self.bg[None, :, :])
        v = self._f(data.reshape(-1, n)).reshape(len(self.masks), len(self.bg), -1).mean(axis=1)
        index = {tuple(m): i for i, m in enumerate(self.masks)}
        phi = np.zeros((v.shape[1], n))
        for i, m in enumerate(self.masks):
            k = int(m.sum())
            for j in np.flatnonzero(~m):  # S = m without j; S + j
                w = factorial(k) * factorial(n - k - 1) / factorial(n)
                with_j = m.copy()
                with_j[j] = True
                phi[:, j] += w * (v[index[tuple(with_j)]] - v[i])
        return phi
