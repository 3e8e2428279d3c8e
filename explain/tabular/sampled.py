"""Model-agnostic methods over the black-box output, with a stored background sample.

permutation and kernel run on arrays (`estimators.py`) with a generator per row seeded from the
request's seed: a row's numbers depend neither on its batch nor on other threads. partition is
shap's deterministic PartitionExplainer recursion, on arrays. Each method is its own module
(`permutation.py`, `kernel.py`, `partition.py`) over this common base.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from eaas.explain.errors import MissingBackground
from eaas.explain.shapley import Estimate, Game, row_rng
from eaas.explain.source import SourceModel
from eaas.explain.tabular.base import Computed, TabularMethod
from eaas.explain.tabular.estimators import MAX_ROWS_PER_CALL, Fn, masked_values
from eaas.explain.validation import Params


class SampledMethod(TabularMethod):
    """The common part: the background, the model on arrays, and the per-row loop."""

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        super().__init__(source, background)
        if background is None:
            raise MissingBackground(
                f"method '{self.name}' needs background data: pass --background PATH "
                "or log the model with an input example"
            )
        cols = source.feature_names
        if self.codec is None:
            self.bg = background[cols].to_numpy(dtype=float)
            vocab = None
        else:  # masking happens in code space; the model gets typed frames back
            self.bg, vocab = self.codec.encode(background[cols].to_numpy(dtype=object))
        self._array_model = array_model(source, self.bg) if self.codec is None else None
        # typed frames cost more per call than arrays: fewer, larger calls (estimators.py)
        self.rows_per_call = MAX_ROWS_PER_CALL * (1 if self.codec is None else 4)
        self.fn = self.model_on(vocab)
        # where model calls run (here unless set): (row, masks, vocabulary) per call
        self.spread: Callable[[list[Any], Any], list[np.ndarray]] | None = None
        self.base = self.fn(self.bg).mean(axis=0)  # E[f(background)]: the all-off coalition

    def model_on(self, vocab: list[list[str]] | None) -> ModelOn:
        """The model on an array of (coded) rows: one call per large batch, not per coalition.
        `vocab` decodes string/category codes (a call's own: it may hold unseen values)."""
        return ModelOn(self, vocab)

    def game(self, fn: Fn, row: np.ndarray) -> Game:
        """The interventional game of one row: absent features take the background's values.
        Its model calls may run elsewhere (`spread_to`): each call goes with the vocabulary
        its rows are coded in, so a mixed-type row (a pipeline, a custom pyfunc on strings)
        is decoded there exactly as here."""
        spread = None
        if self.spread is not None and isinstance(fn, ModelOn) and fn.method is self:
            outer, vocab = self.spread, fn.vocab

            def spread(calls: list[Any], stop: Any = None) -> list[np.ndarray]:
                return outer([(x, masks, vocab) for x, masks in calls], stop)

        return lambda masks: masked_values(fn, row, masks, self.bg, self.rows_per_call, spread)

    def spread_to(self, spread: Any) -> bool:
        self.spread = spread
        return True

    def run_batch(self, batch: Any) -> Any:
        """One model call of `masked_values`: (row, masks, vocabulary) -> (masks, outputs)."""
        row, masks, vocab = batch
        fn = self.fn if self.codec is None else self.model_on(vocab)
        return masked_values(fn, row, masks, self.bg, self.rows_per_call)

    def _compute(
        self, rows: np.ndarray, max_evals: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values, base, pred, _, _ = self._estimate(rows, Params(max_evals, seed, "truncate"))
        return values, base, pred

    def _estimate(self, rows: np.ndarray, params: Params) -> Computed:
        row_rng(params.seed)  # validates the seed before any work (partition draws nothing)
        if self.codec is None:
            arr, fn = np.asarray(rows, dtype=float), self.fn
        else:
            arr, vocab = self.codec.encode(rows)
            fn = self.model_on(vocab)
        pred = fn(arr)
        n, k = pred.shape
        values, errors = np.empty((n, k, arr.shape[1])), np.empty((n, k, arr.shape[1]))
        met = np.empty(n, dtype=bool)
        for i, row in enumerate(arr):
            est = self._row(fn, row, params)
            values[i], errors[i], met[i] = est.values, est.errors, est.met
        return values, np.broadcast_to(self.base, (n, k)).copy(), pred, errors, met

    @abstractmethod
    def _row(self, fn: Fn, row: np.ndarray, params: Params) -> Estimate:
        """One row's attributions (outputs, features), adding up to f(row) - base, with their
        standard errors; f(row) is measured from the row alone (a batched call may round
        differently, BLAS blocking, and a row's numbers must not depend on its batch)."""


class ModelOn:
    """A sampled method's model on (coded) rows, with the vocabulary the codes are in (what a
    model call run elsewhere needs to decode them the same way)."""

    def __init__(self, method: SampledMethod, vocab: list[list[str]] | None) -> None:
        self.method, self.vocab = method, vocab

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        m = self.method
        if m._array_model is not None:
            am = m._array_model
            out = am.predict_proba(arr) if m.source.is_classifier else am.predict(arr)
            return np.asarray(out, dtype=float).reshape(len(arr), -1)
        if m.codec is not None and self.vocab is not None:
            return m.source.predict_output(m.codec.decode(arr, self.vocab))
        frame = pd.DataFrame(arr, columns=m.source.feature_names, copy=False)
        return m.source.predict_output(frame)


def array_model(source: SourceModel, bg: np.ndarray) -> Any:
    """A private copy of a sklearn model that takes arrays in feature order, or None.

    sklearn validates a DataFrame column by column on every call (~1 ms here, as much as
    scoring 2,000 rows of the demo MLP) and warns on arrays when it was fitted on names; a copy
    without the fitted names takes arrays silently. Used only where it gives exactly the
    model's own outputs on the background (a pipeline that selects columns by name does not).
    """
    if source.flavor != "sklearn":
        return None
    model = copy.deepcopy(source.model)
    for step in [model, *(s for _, s in getattr(model, "steps", []))]:
        vars(step).pop("feature_names_in_", None)  # Pipeline's is a property of its first step
    try:
        out = model.predict_proba(bg) if source.is_classifier else model.predict(bg)
        ref = source.predict_output(pd.DataFrame(bg, columns=source.feature_names))
    except Exception:  # e.g. a ColumnTransformer selecting columns by name
        return None
    out = np.asarray(out, dtype=float).reshape(ref.shape)
    return model if np.array_equal(out, ref) else None
