"""Kernel SHAP: a weighted regression over sampled coalitions."""

from __future__ import annotations

import numpy as np

from eaas.explain.method import Capabilities
from eaas.explain.tabular.estimators import Fn, kernel_shap, row_rng
from eaas.explain.tabular.sampled import SampledMethod


class KernelMethod(SampledMethod):
    name = "kernel"
    capabilities = Capabilities(
        inputs="tabular", exact=False, reentrant=True, needs_background=True
    )

    def _row(self, fn: Fn, row: np.ndarray, max_evals: int, seed: int) -> np.ndarray:
        return kernel_shap(fn, row, self.bg, self.base, max_evals, row_rng(seed),
                           self.rows_per_call)
