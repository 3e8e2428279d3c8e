"""SHAP methods for tabular models: exact (tree, linear) and model-agnostic (sampled).

Every method returns the model's own prediction in the method's output space next to the
attributions, so additivity is measured against the real model, not against shap's own sums.
"""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
import shap

from eaas.explain.errors import BadRequest, MissingBackground, UnsupportedModel
from eaas.explain.sampled import (
    cluster_masks,
    kernel_shap,
    partition_shap,
    permutation_shap,
    row_rng,
)
from eaas.explain.schema import Explanations
from eaas.explain.source import MARGIN_TREES, SourceModel
from eaas.explain.treeshap import FastTreeShap, NotSupported

log = logging.getLogger(__name__)
BLACK_BOX = ("permutation", "partition", "kernel")
# model rows per call in the partition recursion: shap evaluates 10 masks at a time (1,000 rows
# with 100 background rows), and sklearn's per-call cost then doubled the time; ~8k rows per call
# measured within 1.3x of the evaluation floor here
PARTITION_ROWS_PER_CALL = 8192


def partition_batch(background_rows: int) -> int:
    """Masks per model call for the partition recursion (at least shap's 10)."""
    return max(10, PARTITION_ROWS_PER_CALL // max(1, background_rows))


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


class TabularMethod(ABC):
    """Common frame: check input, explain, package as Explanations."""

    name = "base"
    exact = False
    # True where explain() keeps no per-call state on the object (no shap explainer, no global
    # RNG): an engine may then run it from several threads without its lock
    thread_safe = False

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        self.source = source
        self.background = background

    @property
    def output_space(self) -> str:
        return self.source.output_space

    def explain(self, x: pd.DataFrame, max_evals: int, seed: int) -> Explanations:
        values, base, pred = self._compute(x, max_evals, seed)
        n = len(x)
        rows = x.to_numpy(dtype=float)
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
        )

    @abstractmethod
    def _compute(self, x: pd.DataFrame, max_evals: int, seed: int):
        """(values (n, k, f), base (n, k), prediction (n, k)) in the method's output space."""


class TreeMethod(TabularMethod):
    """Exact path-dependent TreeSHAP (no background needed)."""

    name = "tree"
    exact = True

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
            self.thread_safe = True
        except Exception as exc:  # e.g. categorical splits: shap's own path is still exact
            if not isinstance(exc, NotSupported):
                log.warning("fast TreeSHAP unavailable for this %s model (%s): using shap's",
                            source.type_name, type(exc).__name__)
            self.fast = None
            self.explainer = shap.TreeExplainer(source.model)

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


class LinearMethod(TabularMethod):
    """Exact linear SHAP with independent features: coef * (x - mean(background))."""

    name = "linear"
    exact = True

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


class SampledMethod(TabularMethod):
    """Model-agnostic methods over the black-box output, with a stored background sample.

    permutation and kernel run on arrays (`explain.sampled`) with a generator per row seeded
    from the request's seed: a row's numbers depend neither on its batch nor on other threads.
    partition is shap's deterministic PartitionExplainer, fed arrays.
    """

    def __init__(self, source: SourceModel, background: pd.DataFrame | None, name: str) -> None:
        super().__init__(source, background)
        if background is None:
            raise MissingBackground(
                f"method '{name}' needs background data: pass --background PATH "
                "or log the model with an input example"
            )
        self.name = name
        self.thread_safe = True
        self.bg = background.to_numpy(dtype=float)
        self._array_model = array_model(source, self.bg)
        if name == "partition":  # shap's feature clustering; the recursion is ours, on arrays
            masker = shap.maskers.Partition(self.bg, max_samples=len(self.bg),
                                            clustering="correlation")
            self.clustering = np.asarray(masker.clustering, dtype=float)
            self.cluster_masks = cluster_masks(self.clustering, self.bg.shape[1])
        self.base = self.fn(self.bg).mean(axis=0)  # E[f(background)]: the all-off coalition

    def fn(self, arr: np.ndarray) -> np.ndarray:
        """The model on an array of rows: one call per (large) batch, not per coalition."""
        if self._array_model is not None:
            m = self._array_model
            out = m.predict_proba(arr) if self.source.is_classifier else m.predict(arr)
            return np.asarray(out, dtype=float).reshape(len(arr), -1)
        frame = pd.DataFrame(arr, columns=self.source.feature_names, copy=False)
        return self.source.predict_output(frame)

    def _compute(self, x: pd.DataFrame, max_evals: int, seed: int):
        nf = x.shape[1]
        if self.name == "permutation" and max_evals < 2 * nf + 1:
            raise BadRequest(
                f"max_evals: permutation needs at least {2 * nf + 1} for {nf} features",
                field="max_evals",
            )
        row_rng(seed)  # validates the seed before any work (partition draws nothing)
        arr = x.to_numpy(dtype=float)
        pred = self.fn(arr)
        n, k = pred.shape
        values = np.empty((n, k, nf))
        for i, row in enumerate(arr):
            # f(x) from the row alone: a batched call may round differently (BLAS blocking),
            # and a row's numbers must not depend on its batch
            fx = self.fn(row[None, :])[0]
            if self.name == "partition":
                values[i] = partition_shap(self.fn, row, self.bg, self.base, fx, max_evals,
                                           self.clustering, self.cluster_masks,
                                           partition_batch(len(self.bg)))
            else:
                method = permutation_shap if self.name == "permutation" else kernel_shap
                values[i] = method(self.fn, row, self.bg, self.base, fx, max_evals,
                                   row_rng(seed))
        return values, np.broadcast_to(self.base, (n, k)).copy(), pred


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


def make_tabular(method: str, source: SourceModel, background: pd.DataFrame | None):
    if method == "tree":
        return TreeMethod(source, background)
    if method == "linear":
        return LinearMethod(source, background)
    if method in BLACK_BOX:
        return SampledMethod(source, background, method)
    raise UnsupportedModel(f"method '{method}' does not apply to a tabular model")
