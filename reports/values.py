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

from eaas.explain.columns import CODED, NUMERIC, Codec, Columns, is_missing
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
    """Each column as a mixed-type explainer declares it (the core's Codec: the same dtypes
    the model was given; numbers read back as floats become integers or booleans again);
    floats otherwise (numbers only)."""
    if is_mixed(config):
        cols = Columns.from_dicts(config.columns)
        return Codec(cols).frame(rows[cols.names].to_numpy(dtype=object))
    return pd.DataFrame(
        {n: [np.nan if is_missing(v) else float(v) for v in rows[n]] for n in rows.columns},
        columns=list(rows.columns), dtype=float,
    )


def numeric_matrix(frame: pd.DataFrame) -> np.ndarray:
    """(rows, features) floats for colouring by value: numbers (a boolean as 1/0) as they are,
    strings and missing values NaN (no order to colour by)."""
    return np.array([_numbers(d) for d in frame["data"]], dtype=float)


def _numbers(d: Any) -> np.ndarray:
    return np.array(
        [np.nan if isinstance(v, str) or is_missing(v) else float(v) for v in from_typed(d)],
        dtype=float,
    )
