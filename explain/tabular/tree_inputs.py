"""Typed pandas frames -> the float matrix the fast TreeSHAP kernels read.

The kernels compare a categorical feature's integer code against each split's set of codes, so
a frame's category values must be coded exactly as the library codes them at predict time,
or the explanation describes another row:

- LightGBM: the booster's `pandas_categorical` (one list per category column of the training
  frame, in column order): a value's code is its index there; an unseen value or a missing
  one becomes NaN (LightGBM's `set_categories` + `codes`, -1 -> NaN), which LightGBM sends
  right at every categorical split.
- xgboost 3.x: the categories stored in the model (`Booster.get_categories`): inputs are
  re-coded by value, not by the frame's own category order. An unseen value takes the code of
  the smallest known category above it (xgboost 3.2 searches the sorted categories without
  checking equality), and one above every known category is refused, as xgboost refuses it.
  A model without stored categories (trained on codes) reads the frame's own codes.
- scikit-learn HistGradientBoosting: its own fitted `OrdinalEncoder` (`_preprocessor`), which
  codes a value by its index in the training categories and an unseen or missing one as NaN;
  its trees see the categorical columns first, which is undone here (columns keep the
  frame's order, as `FastTreeShap` reports them).

Plain string columns holding category values are accepted for all three (coded by value);
`native_margin` gives the library's own raw margin for the same frame (the additivity check).
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
import pandas as pd

from eaas.explain.source import categorical_features

__all__ = ["categorical_features", "native_margin", "native_matrix"]

_NUMBERS = {"integer", "floating", "mixed-integer-float", "decimal", "boolean"}


def _is_categorical(col: pd.Series) -> bool:
    """Category and string columns; an object column unless it holds only numbers (one with
    only missing values is a string column with nothing in it)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return True
    if pd.api.types.is_object_dtype(col.dtype):
        return pd.api.types.infer_dtype(col, skipna=True) not in _NUMBERS
    return pd.api.types.is_string_dtype(col.dtype)


def _numeric(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="raise").to_numpy(dtype=float, na_value=np.nan)


def _codes(col: pd.Series, categories: Any) -> np.ndarray:
    """Index of each value in `categories`; NaN where missing or not listed."""
    codes = pd.Categorical(col.astype(object), categories=categories).codes
    return np.where(codes < 0, np.nan, codes.astype(float))


def _own_codes(col: pd.Series) -> np.ndarray:
    if not isinstance(col.dtype, pd.CategoricalDtype):
        raise ValueError(f"column {col.name!r}: the model stores no categories to code it by")
    return _codes(col, col.cat.categories)


def _booster(model: Any, flavor: str) -> Any:
    if flavor == "lightgbm":
        return getattr(model, "booster_", model)
    return model.get_booster() if hasattr(model, "get_booster") else model


def _lightgbm_matrix(model: Any, frame: pd.DataFrame) -> np.ndarray:
    stored = _booster(model, "lightgbm").pandas_categorical
    cat_cols = [c for c in frame.columns if _is_categorical(frame[c])]
    if stored is not None and len(stored) != len(cat_cols):
        raise ValueError(
            f"the model was trained with {len(stored)} category columns, the "
            f"frame has {len(cat_cols)} ({cat_cols})"
        )
    lists = dict(zip(cat_cols, stored, strict=True)) if stored is not None else {}
    return np.column_stack(
        [
            (_codes(frame[c], lists[c]) if c in lists else _own_codes(frame[c]))
            if c in cat_cols
            else _numeric(frame[c])
            for c in frame.columns
        ]
    )


def _xgb_code(col: pd.Series, known: list) -> np.ndarray:
    """xgboost 3.2's re-coding by value (see the module docstring for unseen values)."""
    order = sorted(range(len(known)), key=lambda i: known[i])
    ordered = [known[i] for i in order]
    values = pd.Categorical(col.astype(object))  # its categories: the distinct values
    try:
        pos = [bisect.bisect_left(ordered, v) for v in values.categories]
    except TypeError as exc:  # e.g. strings for a feature whose categories are numbers
        raise ValueError(f"column {col.name!r}: values unlike the model's categories") from exc
    if any(p >= len(ordered) for p in pos):
        bad = values.categories[[p >= len(ordered) for p in pos]][0]
        raise ValueError(f"column {col.name!r}: category {bad!r} is not in the training set")
    code = np.asarray([order[p] for p in pos] + [0], dtype=float)
    return np.where(values.codes < 0, np.nan, code[values.codes])


def _xgboost_matrix(model: Any, frame: pd.DataFrame) -> np.ndarray:
    booster = _booster(model, "xgboost")
    types = booster.feature_types or ["float"] * frame.shape[1]
    stored = booster.get_categories(export_to_arrow=True).to_arrow()
    cols = []
    for j, c in enumerate(frame.columns):
        if types[j] != "c":
            cols.append(_numeric(frame[c]))
        elif stored[j][1] is not None:
            cols.append(_xgb_code(frame[c], stored[j][1].to_pylist()))
        else:
            cols.append(_own_codes(frame[c]))
    return np.column_stack(cols)


def _hgb_matrix(model: Any, frame: pd.DataFrame) -> np.ndarray:
    pre = model._preprocessor
    if pre is None:
        return np.column_stack([_numeric(frame[c]) for c in frame.columns])
    coded = np.asarray(pre.transform(frame), dtype=float)
    cats = np.asarray(model.is_categorical_, bool)
    out = np.empty_like(coded)
    out[:, np.concatenate([np.flatnonzero(cats), np.flatnonzero(~cats)])] = coded
    return out


def native_matrix(model: Any, flavor: str, frame: pd.DataFrame) -> np.ndarray:
    """(rows, n_features) floats in the frame's column order, categories as the library codes
    them at predict time, missing values NaN: what `FastTreeShap.shap_values` reads."""
    if flavor == "lightgbm":
        x = _lightgbm_matrix(model, frame)
    elif flavor == "xgboost":
        x = _xgboost_matrix(model, frame)
    elif type(model).__name__.startswith("HistGradientBoosting"):
        x = _hgb_matrix(model, frame)
    else:
        x = np.column_stack([_numeric(frame[c]) for c in frame.columns])
    return np.ascontiguousarray(x, dtype=float).reshape(len(frame), frame.shape[1])


def _typed(frame: pd.DataFrame, stored: list | None = None) -> pd.DataFrame:
    """String columns as pandas categories (LightGBM and xgboost refuse plain strings; both
    then code the values by the categories they stored, not by this order). xgboost also
    refuses a category column without categories (all missing): it gets the model's own
    (`stored`: xgboost's (name, arrow array | None) per feature)."""
    out = frame.copy(deep=False)
    for j, c in enumerate(frame.columns):
        if _is_categorical(frame[c]) and not isinstance(frame[c].dtype, pd.CategoricalDtype):
            out[c] = pd.Categorical(frame[c].astype(object))
        dtype = out[c].dtype
        if stored and stored[j][1] is not None and isinstance(dtype, pd.CategoricalDtype):
            if len(dtype.categories) == 0:
                out[c] = pd.Categorical(out[c].astype(object), stored[j][1].to_pylist())
    return out


def native_margin(model: Any, flavor: str, frame: pd.DataFrame) -> np.ndarray:
    """The library's own raw-margin prediction, (rows, outputs): what base + sum(phi) equals."""
    if flavor == "lightgbm":
        out = _booster(model, flavor).predict(_typed(frame), raw_score=True)
    elif flavor == "xgboost":
        import xgboost as xgb

        booster = _booster(model, flavor)
        stored = booster.get_categories(export_to_arrow=True).to_arrow()
        dm = xgb.DMatrix(_typed(frame, stored), enable_categorical=True)
        out = booster.predict(dm, output_margin=True)
    elif hasattr(model, "_raw_predict"):  # HistGradientBoosting, GradientBoosting
        out = model._raw_predict(frame)
    elif hasattr(model, "predict_proba"):  # forests: shap's trees hold probabilities
        out = model.predict_proba(frame)
    else:
        out = model.predict(frame)
    return np.asarray(out, dtype=float).reshape(len(frame), -1)
