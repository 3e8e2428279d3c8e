"""Permutation SHAP: antithetic passes over random feature orders (the default black box)."""

from __future__ import annotations

import numpy as np

from eaas.explain.errors import BadRequest
from eaas.explain.method import Capabilities
from eaas.explain.shapley import Budget, Estimate, permutation, row_rng
from eaas.explain.tabular.estimators import Fn
from eaas.explain.tabular.sampled import SampledMethod
from eaas.explain.validation import Params


class PermutationMethod(SampledMethod):
    name = "permutation"
    capabilities = Capabilities(
        inputs="tabular", exact=False, reentrant=True, needs_background=True
    )

    def _estimate(self, rows: np.ndarray, params: Params):  # noqa: ANN202 - see SampledMethod
        nf = len(self.source.feature_names)
        if params.max_evals < 2 * nf + 1:
            raise BadRequest(
                f"max_evals: permutation needs at least {2 * nf + 1} for {nf} features",
                field="max_evals",
            )
        return super()._estimate(rows, params)

    def _row(self, fn: Fn, row: np.ndarray, params: Params) -> Estimate:
        return permutation(self.game(fn, row), len(row), self.base,
                           Budget(params.max_evals, params.tolerance), row_rng(params.seed))
