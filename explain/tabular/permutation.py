"""Permutation SHAP: antithetic passes over random feature orders (the default black box)."""

from __future__ import annotations

import numpy as np

from eaas.explain.errors import BadRequest
from eaas.explain.method import Capabilities
from eaas.explain.tabular.estimators import Fn, permutation_shap, row_rng
from eaas.explain.tabular.sampled import SampledMethod


class PermutationMethod(SampledMethod):
    name = "permutation"
    capabilities = Capabilities(
        inputs="tabular", exact=False, reentrant=True, needs_background=True
    )

    def _compute(
        self, rows: np.ndarray, max_evals: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nf = len(self.source.feature_names)
        if max_evals < 2 * nf + 1:
            raise BadRequest(
                f"max_evals: permutation needs at least {2 * nf + 1} for {nf} features",
                field="max_evals",
            )
        return super()._compute(rows, max_evals, seed)

    def _row(self, fn: Fn, row: np.ndarray, max_evals: int, seed: int) -> np.ndarray:
        return permutation_shap(fn, row, self.bg, self.base, max_evals, row_rng(seed),
                                self.rows_per_call)
