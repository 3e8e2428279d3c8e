"""Exact linear SHAP with independent features: coef * (x - mean(background))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shap

from eaas.explain.errors import MissingBackground, UnsupportedModel
from eaas.explain.method import Capabilities
from eaas.explain.source import SourceModel
from eaas.explain.tabular.base import TabularMethod, _as_outputs, _binary_margin


class LinearMethod(TabularMethod):
    """Exact linear SHAP with independent features: coef * (x - mean(background))."""

    name = "linear"
    capabilities = Capabilities(inputs="tabular", exact=True, needs_background=True)

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        super().__init__(source, background)
        if source.family != "linear":
            raise UnsupportedModel(
                f"method 'linear' needs a linear model; the model is a "
                f"{source.flavor} {source.type_name}"
            )
        if background is None:
            raise MissingBackground("method 'linear' needs background data (--background)")
        self.explainer = shap.LinearExplainer(source.model, shap.maskers.Independent(background))

    @property
    def output_space(self) -> str:
        if not self.source.is_classifier:
            return "raw"
        return "log_odds" if len(self.source.output_names) == 2 else "raw"

    def _compute(self, x: pd.DataFrame, max_evals: int, seed: int):
        sv = self.explainer(x)
        values, base = _as_outputs(sv.values, sv.base_values, len(x))
        m = self.source.model
        raw = m.decision_function(x) if self.source.is_classifier else m.predict(x)
        pred = np.asarray(raw, dtype=float).reshape(len(x), -1)
        return _binary_margin(values, base, pred, len(self.source.output_names))
