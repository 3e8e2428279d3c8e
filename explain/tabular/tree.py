"""Exact path-dependent TreeSHAP for tree ensembles (sklearn, xgboost, lightgbm).

The fast path (`treeshap.py`: trees extracted once, numba kernels) is re-entrant; a model it
cannot read (e.g. categorical splits) falls back to shap's TreeExplainer, still exact.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import shap

from eaas.explain.errors import UnsupportedModel, one_line
from eaas.explain.method import Capabilities
from eaas.explain.pipelines import Split
from eaas.explain.source import MARGIN_TREES, SourceModel
from eaas.explain.tabular.base import TabularMethod, _as_outputs, _binary_margin
from eaas.explain.tabular.tree_inputs import native_matrix
from eaas.explain.tabular.treeshap import FastTreeShap, NotSupported

log = logging.getLogger(__name__)


class TreeMethod(TabularMethod):
    """Exact path-dependent TreeSHAP (no background needed), over the model's input columns:
    native categorical splits read as such, and a pipeline's column-wise preprocessing undone
    by grouping its outputs by input column (explain/pipelines.py)."""

    name = "tree"
    capabilities = Capabilities(inputs="tabular", exact=True, reentrant=True)

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        super().__init__(source, background)
        if source.family != "tree":
            raise UnsupportedModel(
                f"method 'tree' needs a tree ensemble (xgboost, lightgbm, sklearn trees); "
                f"the model is a {source.flavor} {source.type_name}"
            )
        self.split = Split.of(source.model, source.flavor, source.feature_names)
        self.model = self.split.final if self.split else source.model
        self.flavor = self.split.flavor if self.split else source.flavor
        players = self.split.players if self.split else None
        n_in = len(players) if players is not None else len(source.feature_names)
        self.fast: FastTreeShap | None = None
        try:
            self.fast = FastTreeShap(self.model, self.flavor, n_in, players=players)
        except Exception as exc:
            if self.split is not None or self.codec is not None:
                # shap's explainer would attribute to the model's own features, not the inputs
                raise UnsupportedModel(
                    f"method 'tree': this {self.type_name} cannot be read exactly over its "
                    f"input columns ({one_line(exc)[:120]}); use method permutation"
                ) from None
            if not isinstance(exc, NotSupported):
                log.warning("fast TreeSHAP unavailable for this %s model (%s): using shap's",
                            source.type_name, type(exc).__name__)
            self.explainer = shap.TreeExplainer(source.model)

    @property
    def type_name(self) -> str:
        return type(self.model).__name__

    @property
    def reentrant(self) -> bool:
        return self.fast is not None  # shap's explainer keeps per-call state

    @property
    def output_space(self) -> str:
        if not self.source.is_classifier:
            return "raw"
        if self.flavor in ("xgboost", "lightgbm") or self.type_name in MARGIN_TREES:
            return "log_odds" if len(self.source.output_names) == 2 else "raw"
        return "probability"

    def _margin(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        m = self.model
        if self.flavor == "xgboost":
            out = m.predict(x, output_margin=True)
        elif self.flavor == "lightgbm":
            out = m.predict(x, raw_score=True)
        elif self.type_name in MARGIN_TREES:
            out = m.decision_function(x)
        elif self.source.is_classifier:
            return np.asarray(m.predict_proba(x), dtype=float)
        else:
            out = m.predict(x)
        return np.asarray(out, dtype=float).reshape(len(x), -1)

    def _inputs(self, rows: np.ndarray) -> tuple[np.ndarray, Any]:
        """(the matrix the trees read, what the model's own margin is computed on)."""
        if self.split is not None:
            m = self.split.matrix(self.frame(rows))
            return m, m
        if self.codec is not None:  # native categories: coded the way the library codes them
            frame = self.frame(rows)
            return native_matrix(self.model, self.flavor, frame), frame
        arr = np.asarray(rows, dtype=float)
        # xgboost takes arrays in column order; skipping its per-column pandas path halves
        # the cost of a one-row request
        return arr, arr if self.flavor == "xgboost" else self.frame(arr)

    def _compute(self, rows: np.ndarray, max_evals: int, seed: int):
        matrix, native = self._inputs(rows)
        if self.fast is not None:
            phi, bias = self.fast.shap_values(matrix)
            values = np.transpose(phi, (0, 2, 1))
            base = np.broadcast_to(bias, (len(rows), len(bias))).copy()
        else:
            sv = self.explainer(native, check_additivity=False)
            values, base = _as_outputs(sv.values, sv.base_values, len(rows))
        pred = self._margin(native)
        return _binary_margin(values, base, pred, len(self.source.output_names))
