"""Exact path-dependent TreeSHAP for tree ensembles (sklearn, xgboost, lightgbm).

The fast path (`treeshap.py`: trees extracted once, numba kernels) is re-entrant; a model it
cannot read (e.g. categorical splits) falls back to shap's TreeExplainer, still exact.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import shap

from eaas.explain.errors import UnsupportedModel
from eaas.explain.method import Capabilities
from eaas.explain.source import MARGIN_TREES, SourceModel
from eaas.explain.tabular.base import TabularMethod, _as_outputs, _binary_margin
from eaas.explain.tabular.treeshap import FastTreeShap, NotSupported

log = logging.getLogger(__name__)


class TreeMethod(TabularMethod):
    """Exact path-dependent TreeSHAP (no background needed)."""

    name = "tree"
    capabilities = Capabilities(inputs="tabular", exact=True, reentrant=True)

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        super().__init__(source, background)
        if source.family != "tree":
            raise UnsupportedModel(
                f"method 'tree' needs a tree ensemble (xgboost, lightgbm, sklearn trees); "
                f"the model is a {source.flavor} {source.type_name}"
            )
        try:
            self.fast: FastTreeShap | None = FastTreeShap(
                source.model, source.flavor, len(source.feature_names)
            )
        except Exception as exc:  # e.g. categorical splits: shap's own path is still exact
            if not isinstance(exc, NotSupported):
                log.warning("fast TreeSHAP unavailable for this %s model (%s): using shap's",
                            source.type_name, type(exc).__name__)
            self.fast = None
            self.explainer = shap.TreeExplainer(source.model)

    @property
    def reentrant(self) -> bool:
        return self.fast is not None  # shap's explainer keeps per-call state

    @property
    def output_space(self) -> str:
        if not self.source.is_classifier:
            return "raw"
        if self.source.flavor in ("xgboost", "lightgbm") or self.source.type_name in MARGIN_TREES:
            return "log_odds" if len(self.source.output_names) == 2 else "raw"
        return "probability"

    def _margin(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        m = self.source.model
        if self.source.flavor == "xgboost":
            out = m.predict(x, output_margin=True)
        elif self.source.flavor == "lightgbm":
            out = m.predict(x, raw_score=True)
        elif self.source.type_name in MARGIN_TREES:
            out = m.decision_function(x)
        elif self.source.is_classifier:
            return np.asarray(m.predict_proba(x), dtype=float)
        else:
            out = m.predict(x)
        return np.asarray(out, dtype=float).reshape(len(x), -1)

    def _compute(self, x: pd.DataFrame, max_evals: int, seed: int):
        # xgboost takes arrays in column order; skipping its per-column pandas path halves
        # the cost of a one-row request
        data = x.to_numpy() if self.source.flavor == "xgboost" else x
        if self.fast is not None:
            phi, bias = self.fast.shap_values(x.to_numpy(dtype=float))
            values = np.transpose(phi, (0, 2, 1))
            base = np.broadcast_to(bias, (len(x), len(bias))).copy()
        else:
            sv = self.explainer(data, check_additivity=False)
            values, base = _as_outputs(sv.values, sv.base_values, len(x))
        pred = self._margin(data)
        return _binary_margin(values, base, pred, len(self.source.output_names))
