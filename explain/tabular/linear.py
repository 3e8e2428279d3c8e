"""Exact linear SHAP with independent (interventional) features.

A linear model: shap's `coef * (x - mean(background))`. A pipeline of column-wise preprocessing
and a linear model (explain/pipelines.py) is additive in its input columns,
f(x) = c + sum_j g_j(x_j), so each column's interventional Shapley value is its own term,
phi_j = g_j(x_j) - E[g_j(b_j)], whatever the transforms (one-hot, scaling, imputing). It is
measured through the model itself: with a reference row r, g_j(x_j) - g_j(r_j) =
f(x with column j, r elsewhere) - f(r), and E[g_j(b_j)] - g_j(r_j) is the same over the background,
computed once. One model call per request (rows x columns), exact up to rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shap

from eaas.explain.errors import MissingBackground, UnsupportedModel
from eaas.explain.method import Capabilities
from eaas.explain.pipelines import Split
from eaas.explain.source import SourceModel
from eaas.explain.tabular.base import TabularMethod, _as_outputs, _binary_margin


class LinearMethod(TabularMethod):
    """Exact linear SHAP with independent features, over the model's input columns."""

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
        self.split = Split.of(source.model, source.flavor, source.feature_names)
        if self.split is None:
            self.explainer = shap.LinearExplainer(
                source.model, shap.maskers.Independent(background)
            )
            return
        bg = background[source.feature_names].to_numpy(dtype=object)
        self.bg_codes, vocab = self._encode(bg)
        self.ref = self.bg_codes[:1]
        f_ref = self._margin_codes(self.ref, vocab)
        # E[g_j(b_j)] - g_j(r_j) per column, and E[f(b)]
        self.offsets = self._terms(self.bg_codes, vocab, f_ref).mean(axis=0)  # (f, k)
        self.base = self._margin_codes(self.bg_codes, vocab).mean(axis=0)

    @property
    def output_space(self) -> str:
        if not self.source.is_classifier:
            return "raw"
        return "log_odds" if len(self.source.output_names) == 2 else "raw"

    def _encode(self, rows: np.ndarray) -> tuple[np.ndarray, list[list[str]] | None]:
        if self.codec is None:
            return np.asarray(rows, dtype=float), None
        return self.codec.encode(rows)

    def _margin_codes(self, codes: np.ndarray, vocab: list[list[str]] | None) -> np.ndarray:
        """The pipeline's margin, row by row: its (column-wise) transforms, then the linear
        model's sum per row, not a matrix product whose rounding depends on the batch: a
        row's numbers must not depend on the rows explained beside it."""
        assert self.split is not None
        frame = (self.codec.decode(codes, vocab) if self.codec is not None and vocab is not None
                 else pd.DataFrame(codes, columns=self.source.feature_names))
        z = self.split.matrix(frame)
        final = self.split.final
        coef = np.atleast_2d(np.asarray(final.coef_, dtype=float))
        return (z[:, None, :] * coef[None, :, :]).sum(axis=2) + np.asarray(
            final.intercept_, dtype=float).reshape(1, -1)

    def _margin(self, x: pd.DataFrame) -> np.ndarray:
        m = self.source.model
        raw = m.decision_function(x) if self.source.is_classifier else m.predict(x)
        return np.asarray(raw, dtype=float).reshape(len(x), -1)

    def _terms(self, codes: np.ndarray, vocab: list[list[str]] | None,
               f_ref: np.ndarray) -> np.ndarray:
        """(rows, features, outputs): f(row's column j, reference elsewhere) - f(reference)."""
        n, nf = codes.shape
        grid = np.repeat(self.ref, n * nf, axis=0).reshape(n, nf, nf)
        idx = np.arange(nf)
        grid[:, idx, idx] = codes
        out = self._margin_codes(grid.reshape(n * nf, nf), vocab)
        return out.reshape(n, nf, -1) - f_ref[None, :, :]

    def _compute(self, rows: np.ndarray, max_evals: int, seed: int):
        if self.split is None:
            x = self.frame(rows)
            sv = self.explainer(x)
            values, base = _as_outputs(sv.values, sv.base_values, len(x))
            pred = self._margin(x)
        else:
            codes, vocab = self._encode(rows)
            f_ref = self._margin_codes(self.ref, vocab)
            phi = self._terms(codes, vocab, f_ref) - self.offsets[None]
            values = np.transpose(phi, (0, 2, 1))
            base = np.broadcast_to(self.base, (len(rows), len(self.base))).copy()
            pred = self._margin_codes(codes, vocab)
        return _binary_margin(values, base, pred, len(self.source.output_names))
