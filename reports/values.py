"""The explained inputs as a report reads them: `data` in either form (plain values, or the
struct form of a mixed-type explainer's batch output) through `from_typed`, typed by the
explainer's declared columns (`config.columns`: number, integer, boolean, string, category).

A numbers-only explainer (no columns declared, or numbers and integers only) keeps floats, as
before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from eaas.explain.columns import CODED, NUMERIC, is_missing
from eaas.explain.config import ExplainerConfig
from eaas.explain.schema import from_typed


def category_columns(config: ExplainerConfig) -> list[str]:
    """The explainer's string and category inputs, in its feature order."""
    coded = {c["name"] for c in config.columns if c.get("type") in CODED}
    return [f for f in config.features if f in coded]


def rows_of(frame: pd.DataFrame) -> list[list[Any]]:
    """Each row's `data` as plain values (a string, a number or None)."""
    return [from_typed(d) for d in frame["data"]]


def explained_values(frame: pd.DataFrame, config: ExplainerConfig) -> pd.DataFrame:
    """The explainer's inputs rebuilt from each row's own `features` and `data`, typed."""
    cols = config.features
    rows = [
        dict(zip(map(str, f), d, strict=True))
        for f, d in zip(frame["features"], rows_of(frame), strict=True)
    ]
    return typed_frame(pd.DataFrame(rows, columns=cols, dtype=object), config)


def is_mixed(config: ExplainerConfig) -> bool:
    """Declared columns that are not all numbers: "value" data (the numbers-only path stays)."""
    return any(c.get("type") not in NUMERIC for c in config.columns)


def typed_frame(rows: pd.DataFrame, config: ExplainerConfig) -> pd.DataFrame:
    """Each column as a mixed-type explainer declares it; floats otherwise (numbers only)."""
    declared = {c["name"]: c for c in config.columns} if is_mixed(config) else {}
    return pd.DataFrame(
        {name: _column(rows[name].tolist(), declared.get(name)) for name in rows.columns},
        columns=list(rows.columns),
    )


def _column(values: list[Any], col: dict[str, Any] | None) -> Any:
    """One column's values (plain, a number possibly read back as a float) -> its dtype."""
    kind = col["type"] if col else "number"
    gap = [is_missing(v) for v in values]
    if kind in CODED:
        vals = [None if m else str(v) for v, m in zip(values, gap, strict=True)]
        if kind == "category":  # declared values first, then any seen only here
            known = [str(c) for c in (col or {}).get("categories", [])]
            seen = [v for v in vals if v is not None]
            return pd.Categorical(vals, categories=list(dict.fromkeys([*known, *seen])))
        return pd.Series(vals, dtype=object)  # pandas would make it `str`, None as NaN
    if kind == "integer":  # pandas' nullable dtype keeps the type and the gap
        ints = [None if m else int(v) for v, m in zip(values, gap, strict=True)]
        return pd.array(ints, "Int64") if any(gap) else np.array(ints, dtype=np.int64)
    if kind == "boolean":
        flags = [None if m else bool(v) for v, m in zip(values, gap, strict=True)]
        return pd.array(flags, "boolean") if any(gap) else np.array(flags, dtype=bool)
    return np.array([np.nan if m else float(v) for v, m in zip(values, gap, strict=True)])


def numeric_matrix(frame: pd.DataFrame) -> np.ndarray:
    """(rows, features) floats for colouring by value: numbers (a boolean as 1/0) as they are,
    strings and missing values NaN (no order to colour by)."""
    return np.array([_numbers(d) for d in frame["data"]], dtype=float)


def _numbers(d: Any) -> np.ndarray:
    if isinstance(d, np.ndarray) and d.dtype.kind == "f":  # a numbers-only row, as read back
        return d
    return np.array(
        [np.nan if isinstance(v, str) or is_missing(v) else float(v) for v in from_typed(d)],
        dtype=float,
    )
