"""Permutation SHAP: antithetic passes over random feature orders (the default black box)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eaas.explain.errors import BadRequest
from eaas.explain.method import Capabilities
from eaas.explain.tabular.estimators import permutation_shap, row_rng
from eaas.explain.tabular.sampled import SampledMethod


class PermutationMethod(SampledMethod):
    name = "permutation"
    capabilities = Capabilities(
        inputs="tabular", exact=False, reentrant=True, needs_background=True
    )

    def _compute(
        self, x: pd.DataFrame, max_evals: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nf = x.shape[1]
        if max_evals < 2 * nf + 1:
            raise BadRequest(
                f"max_evals: permutation needs at least {2 * nf + 1} for {nf} features",
                field="max_evals",
            )
        return super()._compute(x, max_evals, seed)

    def _row(self, row: np.ndarray, fx: np.ndarray, max_evals: int, seed: int) -> np.ndarray:
        return permutation_shap(self.fn, row, self.bg, self.base, fx, max_evals, row_rng(seed))
