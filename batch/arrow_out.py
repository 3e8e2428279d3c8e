"""Explanations in array form -> the Arrow columns the job writes, with no Python object per
number: list columns are built from one flat buffer and offsets.

Profiled on the bench's 100-tree model: turning each row's arrays into Python lists and back
into Arrow cost about twice the TreeSHAP itself; this path gives the same columns (equal
values, same types) from the same engine call.

`data` of a mixed-type explainer ("value": strings, categories, booleans beside numbers) is one
struct per value, `{number, text}` (explain/schema.py `to_typed`); both paths write it from the
same conversion.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from eaas.explain.schema import COLUMNS, Explanations, to_typed


def _lists(flat: pa.Array, n: int, width: int, null: np.ndarray | None = None) -> pa.ListArray:
    """n lists of `width` items each, over `flat` (n * width items); `null`: rows left null."""
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    if null is not None and null.any():
        return pa.ListArray.from_arrays(offsets, flat, mask=pa.array(null))
    return pa.ListArray.from_arrays(offsets, flat)


def _errors(exp: Explanations, n: int, k: int, f: int) -> pa.Array:
    """`approximation_error`: zeros for an exact method, null for a row holding a NaN (no
    error estimated), as the per-row path writes them."""
    e = (np.zeros((n, k, f)) if exp.errors is None
         else np.asarray(exp.errors, dtype=float).reshape(n, k, f))  # fmt: skip
    null = np.isnan(e).any(axis=(1, 2))
    return _lists(_lists(_doubles(np.nan_to_num(e)), n * k, f), n, k, null)


def _repeated(names: list[str], n: int) -> pa.ListArray:
    """The same list of strings on every row (features, output names)."""
    one = pa.array(list(names), pa.string())
    return _lists(one.take(np.tile(np.arange(len(names)), n)), n, len(names))


def _doubles(a: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(a, dtype=np.float64).ravel())


def is_typed(t: pa.DataType) -> bool:
    """`data` of a "value" explainer: a list of {number, text} structs."""
    return pa.types.is_list(t) and pa.types.is_struct(t.value_type)


def record_column(items: list, t: pa.DataType) -> pa.Array:
    """One column from plain records (None: an error row); `data` lists of plain values become
    their struct form where `t` asks for it."""
    if is_typed(t):
        items = [None if d is None else to_typed(list(d)) for d in items]
    return pa.array(items, type=t)


def _data(data: list | np.ndarray, n: int, f: int, t: pa.DataType) -> pa.Array:
    if is_typed(t):  # plain Python values (float, int, str, bool, None), row by row
        flat = np.asarray(data, dtype=object).reshape(n * f).tolist()
        return _lists(pa.array(to_typed(flat), t.value_type), n, f)
    return _lists(_doubles(np.asarray(data, dtype=np.float64).reshape(n, f)), n, f)


def explanation_columns(exp: Explanations, fields: list[pa.Field]) -> list[pa.Array] | None:
    """The Explanation columns, typed as `fields` (in COLUMNS order), or None where the rows do
    not share one shape (text: each row has its own words), left to the per-row path."""
    by_name = {fd.name: fd for fd in fields}
    typed = is_typed(by_name["data"].type)  # tabular: an array (numbers) or rows of values
    values = exp.dense_values() if typed or isinstance(exp.data, np.ndarray) else None
    if values is None:
        return None
    n, k, f = values.shape
    first = exp.features[0]
    if any(row is not first and list(row) != list(first) for row in exp.features):
        return None
    cut = np.asarray(exp.truncated or [False] * n, dtype=bool)
    cols = {
        "output_names": _repeated(list(exp.output_names), n),
        "prediction": _lists(_doubles(exp.prediction), n, k),
        "base_values": _lists(_doubles(exp.base_values), n, k),
        "values": _lists(_lists(_doubles(values), n * k, f), n, k),
        "features": _repeated(list(first), n),
        "data": _data(exp.data, n, f, by_name["data"].type),
        "additivity_error": _doubles(exp.additivity_errors()),
        "approximation_error": _errors(exp, n, k, f),
        "tolerance_met": pa.array(np.asarray(exp.met_rows(), dtype=bool)),
        "truncated": pa.array(cut),
    }
    return [cols[c].cast(by_name[c].type) for c in COLUMNS]
