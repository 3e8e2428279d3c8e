"""scikit-learn pipelines whose preprocessing maps each input column on its own.

`Pipeline(ColumnTransformer(OneHotEncoder on strings, StandardScaler on numbers), model)` is how
most tabular models are registered. When every preprocessing step is column-wise (each output
column comes from exactly one input column), the final model's own exact method can explain the
pipeline over its *input* columns:
- a linear model is then additive in the input columns, so a column's interventional Shapley
  value is its own term (explain/tabular/linear.py);
- a tree's splits on the outputs of one input column are splits on that column, so TreeSHAP
  with the outputs grouped by input column (`players`) is exact over the input columns.
Anything else (a step that mixes columns, an unknown transformer) is not split: the pipeline is
then a black box for the sampled methods, which are right for any model. `SourceModel.family`
gives a split pipeline its final model's family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# transformers with one output per input column
ONE_TO_ONE = {
    "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "OrdinalEncoder",
    "PowerTransformer", "QuantileTransformer",
}


@dataclass(frozen=True)
class Split:
    """A pipeline cut into column-wise preprocessing and its final model."""

    pre: Any  # the fitted preprocessing (a transformer): input frame -> model matrix
    final: Any  # the fitted final estimator
    flavor: str  # the final estimator's library: sklearn | xgboost | lightgbm
    players: np.ndarray  # (model features,) -> the input column each one comes from

    @classmethod
    def of(cls, model: Any, flavor: str, features: list[str]) -> Split | None:
        """The split of a sklearn pipeline over its input columns `features`, or None."""
        steps = getattr(model, "steps", None)
        if flavor != "sklearn" or not steps or len(steps) < 2:
            return None
        groups = np.arange(len(features))
        for _, step in steps[:-1]:
            out = _groups(step, groups)
            if out is None:
                return None
            groups = out
        final = steps[-1][1]
        return cls(model[:-1], final, _flavor(final), groups)

    def matrix(self, frame: Any) -> np.ndarray:
        """The final model's input for `frame` (dense floats)."""
        out = self.pre.transform(frame)
        if hasattr(out, "toarray"):
            out = out.toarray()
        return np.asarray(out, dtype=float)


def _flavor(model: Any) -> str:
    mod = type(model).__module__
    if mod.startswith("xgboost."):
        return "xgboost"
    if mod.startswith("lightgbm."):
        return "lightgbm"
    return "sklearn"


def _groups(step: Any, groups: np.ndarray) -> np.ndarray | None:
    """The input column of each output of `step`, given that of each of its inputs."""
    if isinstance(step, str):
        return groups if step == "passthrough" else None
    if hasattr(step, "transformers_"):
        return _column_transformer(step, groups)
    if hasattr(step, "steps"):
        for _, sub in step.steps:
            out = _groups(sub, groups)
            if out is None:
                return None
            groups = out
        return groups
    widths = _widths(step, len(groups))
    if widths is None or len(widths) != len(groups):
        return None
    return np.repeat(groups, widths)


def _widths(step: Any, n_in: int) -> list[int] | None:
    """Outputs per input column of a column-wise transformer; None if it is not one."""
    name = type(step).__name__
    if name == "OneHotEncoder":
        return [int(w) for w in step._n_features_outs]
    if name == "SimpleImputer":
        return None if step.add_indicator else [1] * n_in
    if name == "FunctionTransformer":  # a fitted "passthrough" is the identity function
        return [1] * n_in if step.func is None else None
    if name == "KBinsDiscretizer":
        return [int(b) for b in step.n_bins_] if step.encode.startswith("onehot") else [1] * n_in
    if name in ONE_TO_ONE:
        return [1] * n_in
    return None


def _column_transformer(ct: Any, groups: np.ndarray) -> np.ndarray | None:
    """Each output of a fitted ColumnTransformer -> the input column it comes from."""
    width = sum(s.stop - s.start for s in ct.output_indices_.values())
    out = np.full(width, -1, dtype=np.int64)
    inputs = ct._transformer_to_input_indices
    for name, trans, _ in ct.transformers_:
        where = ct.output_indices_.get(name)
        if where is None or where.stop == where.start or trans == "drop":
            continue
        sub = _groups(trans, groups[np.asarray(inputs[name], dtype=np.int64)])
        if sub is None or len(sub) != where.stop - where.start:
            return None
        out[where] = sub
    return None if (out < 0).any() else out
