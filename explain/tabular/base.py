"""The tabular family's common frame: checked float rows in, `Explanations` out.

Every tabular method returns the model's own prediction in its output space next to the
attributions, so additivity is measured against the real model, not against shap's own sums.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import pandas as pd

from eaas.explain.columns import Codec
from eaas.explain.errors import Stop
from eaas.explain.method import Method
from eaas.explain.schema import Explanations
from eaas.explain.source import SourceModel
from eaas.explain.validation import Params

# values (n, k, f), base (n, k), prediction (n, k), errors (n, k, f) or None, met (n,) or None
Computed = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


def _as_outputs(values: np.ndarray, base: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """shap's (n, f) or (n, f, k) values and (n,) or (n, k) bases -> (n, k, f) and (n, k)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 2:
        values = values[:, None, :]
    else:
        values = np.transpose(values, (0, 2, 1))
    base = np.asarray(base, dtype=float).reshape(n, -1)
    if base.shape[1] == 1 and values.shape[1] > 1:
        base = np.repeat(base, values.shape[1], axis=1)
    return values, base


def _binary_margin(values: np.ndarray, base: np.ndarray, margin: np.ndarray, n_classes: int):
    """A binary margin (log-odds of class 1) as two outputs: class 0's log-odds is its negative."""
    if n_classes == 2 and values.shape[1] == 1:
        return (
            np.concatenate([-values, values], axis=1),
            np.concatenate([-base, base], axis=1),
            np.concatenate([-margin, margin], axis=1),
        )
    return values, base, margin


class TabularMethod(Method):
    """Common frame: the checked (n, features) rows -> Explanations. Rows are floats when every
    input is a number, else objects holding each value as the model takes it (the mixed input
    rule); `codec` then codes them for masking and `frame` rebuilds the model's typed frame."""

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        super().__init__(source, background)
        cols = source.columns
        self.codec: Codec | None = Codec(cols) if cols.items and not cols.numeric else None

    def frame(self, rows: np.ndarray) -> pd.DataFrame:
        """Checked rows -> the DataFrame the model takes, with its dtypes."""
        if self.codec is not None:
            return self.codec.frame(rows)
        return pd.DataFrame(np.asarray(rows, dtype=float), columns=self.source.feature_names)

    def explain(self, data: Any, params: Params, stop: Stop | None = None) -> Explanations:
        rows = np.asarray(data, dtype=float if self.codec is None else object)
        values, base, pred, errors, met = self._estimate(rows, params)
        n = len(rows)
        names = self.source.output_names
        if len(names) != values.shape[1]:  # e.g. a pyfunc without named outputs
            names = [f"output_{i}" for i in range(values.shape[1])]
        return Explanations(
            output_names=names,
            prediction=pred,
            base_values=base,
            values=np.asarray(values, dtype=float),
            features=[list(self.source.feature_names)] * n,
            data=rows,
            errors=errors,
            met=met,
        )

    def _estimate(self, rows: np.ndarray, params: Params) -> Computed:
        """`_compute` plus each row's standard errors and whether they met the tolerance:
        None, None for an exact method (errors 0)."""
        values, base, pred = self._compute(rows, params.max_evals, params.seed)
        return values, base, pred, None, None

    @abstractmethod
    def _compute(
        self, rows: np.ndarray, max_evals: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values (n, k, f), base (n, k), prediction (n, k)) in the method's output space, for
        checked rows (`frame(rows)` is the model's DataFrame)."""
