"""Explanations in array form -> the Arrow columns the job writes, with no Python object per
number: list columns are built from one flat buffer and offsets.

Profiled on the bench's 100-tree model: turning each row's arrays into Python lists and back
into Arrow cost about twice the TreeSHAP itself; this path gives the same columns (equal
values, same types) from the same engine call.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from eaas.explain.schema import COLUMNS, Explanations


def _lists(flat: pa.Array, n: int, width: int) -> pa.ListArray:
    """n lists of `width` items each, over `flat` (n * width items)."""
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat)


def _repeated(names: list[str], n: int) -> pa.ListArray:
    """The same list of strings on every row (features, output names)."""
    one = pa.array(list(names), pa.string())
    return _lists(one.take(np.tile(np.arange(len(names)), n)), n, len(names))


def _doubles(a: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(a, dtype=np.float64).ravel())


def explanation_columns(exp: Explanations, fields: list[pa.Field]) -> list[pa.Array] | None:
    """The Explanation columns, typed as `fields` (in COLUMNS order), or None where the rows do
    not share one shape (text: each row has its own words), left to the per-row path."""
    values = exp.dense_values() if isinstance(exp.data, np.ndarray) else None  # tabular only
    if values is None:
        return None
    n, k, f = values.shape
    first = exp.features[0]
    if any(row is not first and list(row) != list(first) for row in exp.features):
        return None
    data = np.asarray(exp.data, dtype=np.float64).reshape(n, f)
    cut = np.asarray(exp.truncated or [False] * n, dtype=bool)
    cols = {
        "output_names": _repeated(list(exp.output_names), n),
        "prediction": _lists(_doubles(exp.prediction), n, k),
        "base_values": _lists(_doubles(exp.base_values), n, k),
        "values": _lists(_lists(_doubles(values), n * k, f), n, k),
        "features": _repeated(list(first), n),
        "data": _lists(_doubles(data), n, f),
        "additivity_error": _doubles(exp.additivity_errors()),
        "truncated": pa.array(cut),
    }
    by_name = {fd.name: fd for fd in fields}
    return [cols[c].cast(by_name[c].type) for c in COLUMNS]
