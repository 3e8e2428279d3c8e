"""Kernel SHAP: a weighted regression over sampled coalitions."""

from __future__ import annotations

import numpy as np

from eaas.explain.method import Capabilities
from eaas.explain.shapley import Budget, Estimate, kernel, row_rng
from eaas.explain.tabular.estimators import Fn
from eaas.explain.tabular.sampled import SampledMethod
from eaas.explain.validation import Params


class KernelMethod(SampledMethod):
    name = "kernel"
    capabilities = Capabilities(
        inputs="tabular", exact=False, reentrant=True, needs_background=True
    )

    def _row(self, fn: Fn, row: np.ndarray, params: Params) -> Estimate:
        return kernel(self.game(fn, row), len(row), self.base,
                      Budget(params.max_evals, params.tolerance), row_rng(params.seed))
