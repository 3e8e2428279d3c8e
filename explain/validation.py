"""The one input check: the REST service, the pyfunc and the Spark worker all call these, so a
bad value gets the same verdict and the same message whichever way it came in.

Messages name the field (`parameters.<name>`, a feature column, `text`) and the reason, and never
echo the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from eaas.explain.errors import InvalidInput
from eaas.explain.schema import LONG_TEXT

PARAMS = ("max_evals", "seed", "long_text", "tolerance")
SEED_MAX = 2**32 - 1  # numpy's seed range


@dataclass(frozen=True)
class Params:
    """Validated explanation parameters, defaults filled from the explainer's config."""

    max_evals: int
    seed: int
    long_text: str
    # sampled methods stop adding evaluations once every output's error norm is within
    # tolerance x |prediction - base value|; 0 spends the whole max_evals budget
    tolerance: float = 0.0


DEFAULT_LONG_TEXT = LONG_TEXT[0]  # truncate: explain what the model sees, and say so


def default_params(settings: Any) -> Params:
    """A new explainer's defaults: the settings' budget and seed (EAAS_DEFAULT_*)."""
    return Params(settings.default_max_evals, settings.default_seed, DEFAULT_LONG_TEXT,
                  settings.default_tolerance)


def _integer(name: str, v: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InvalidInput(f"parameters.{name}: must be an integer", field=f"parameters.{name}")
    if v < lo or (hi is not None and v > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidInput(f"parameters.{name}: must be {rng}", field=f"parameters.{name}")
    return int(v)


def check_params(params: dict[str, Any] | None, defaults: Params) -> Params:
    """Unknown names, types and ranges; a missing (or None) value takes the explainer's default."""
    params = {k: v for k, v in (params or {}).items() if v is not None}
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        name = str(unknown[0])[:100]
        raise InvalidInput(f"parameters.{name}: unknown parameter", field=f"parameters.{name}")
    max_evals = _integer("max_evals", params.get("max_evals", defaults.max_evals), 1)
    seed = _integer("seed", params.get("seed", defaults.seed), 0, SEED_MAX)
    long_text = params.get("long_text", defaults.long_text)
    if long_text not in LONG_TEXT:
        raise InvalidInput(
            f"parameters.long_text: must be one of {', '.join(LONG_TEXT)}",
            field="parameters.long_text",
        )
    tolerance = _fraction("tolerance", params.get("tolerance", defaults.tolerance))
    return Params(max_evals, seed, long_text, tolerance)


def _fraction(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise InvalidInput(f"parameters.{name}: must be a number", field=f"parameters.{name}")
    if not 0 <= float(v) <= 1:
        raise InvalidInput(f"parameters.{name}: must be between 0 and 1",
                           field=f"parameters.{name}")
    return float(v)


def check_budget(p: Params, method: str, n_features: int) -> None:
    """Permutation needs two passes over the features plus the baseline."""
    need = 2 * n_features + 1
    if method == "permutation" and p.max_evals < need:
        raise InvalidInput(
            f"parameters.max_evals: permutation needs at least {need} for {n_features} features",
            field="parameters.max_evals",
        )


# --- instances --------------------------------------------------------------------------------
# One rule for every path: REST records, the pyfunc's DataFrame and the Spark worker's Arrow
# batches. Errors name `instances[i].<field>` (i: the row's position in the call) and the reason.

FLOAT_LIMIT = 3.4e38  # float32's range: tree libraries cast to float32, larger would overflow
NUMBER_RANGE = "out of range (magnitude above 3.4e38)"
NOT_A_NUMBER = "not a number"
NO_NAN = "missing value and the model cannot take it"
MAX_MESSAGE = 100


def _name(field: Any) -> str:
    """A field name as it may appear in a message: a string, cut to 100 characters."""
    return str(field)[:MAX_MESSAGE]


def invalid(i: int, field: Any, reason: str) -> InvalidInput:
    """`instances[i].<field>: reason`; `row_message` drops the position (`<field>: reason`) for
    outputs where the error already sits on its row (the Spark job's `error` column)."""
    where = f"instances[{i}]" + (f".{_name(field)}" if field is not None else "")
    exc = InvalidInput(f"{where}: {reason}", field=where)
    exc.row_message = f"{_name(field)}: {reason}" if field is not None else reason
    return exc


def cell_reason(v: Any, accepts_nan: bool) -> str | None:
    """Why one tabular value is refused, or None when it is a usable number (None/NaN: missing)."""
    if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return None if accepts_nan else NO_NAN
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return NOT_A_NUMBER
    if isinstance(v, (float, np.floating)) and math.isinf(v):
        return "infinite value"
    if abs(cast(float, v)) > FLOAT_LIMIT:  # an int, float or numpy number by now
        return NUMBER_RANGE
    return None


def check_columns(cols: list[str], features: list[str], i: int = 0) -> None:
    """The instance has exactly the model's columns: the first missing one, else the first
    extra one, is the error."""
    missing = [f for f in features if f not in cols]
    if missing:
        raise invalid(i, missing[0], "missing feature")
    extra = [c for c in cols if c not in features]
    if extra:
        raise invalid(i, extra[0], "unexpected feature (not a model input)")


def _record(i: int, rec: Any, features: list[str], accepts_nan: bool) -> list[Any]:
    if not isinstance(rec, dict):
        raise invalid(i, None, "expected an object of feature -> number")
    if len(rec) != len(features) or any(f not in rec for f in features):
        check_columns([str(k) for k in rec], features, i)
    row = [rec[f] for f in features]
    for f, v in zip(features, row, strict=True):
        why = cell_reason(v, accepts_nan)
        if why:
            raise invalid(i, f, why)
    return row


def check_tabular(data: Any, features: list[str], accepts_nan: bool = False) -> np.ndarray:
    """Records (list of dicts) or a DataFrame -> float64 array (n, features) in feature order."""
    if isinstance(data, pd.DataFrame):
        return _check_frame(data, features, accepts_nan)
    rows = [_record(i, rec, features, accepts_nan) for i, rec in enumerate(data)]
    return np.array(rows, dtype=float).reshape(len(rows), len(features))


def _check_frame(df: pd.DataFrame, features: list[str], accepts_nan: bool) -> np.ndarray:
    check_columns([str(c) for c in df.columns], features)
    arr, suspect = _vector_check(_in_order(df, features), accepts_nan)
    if arr is not None and not suspect.any():
        return arr
    errors = tabular_row_errors(df, features, accepts_nan)
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return _in_order(df, features).to_numpy(dtype=float)


def _in_order(df: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature columns in model order; the frame itself when it already is (the usual case:
    a label lookup builds pandas' hash table of the columns, ~9 ms the first time per frame)."""
    return df if [str(c) for c in df.columns] == features else df[features]


def _vector_check(sub: pd.DataFrame, accepts_nan: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """Numeric frames: (float array, rows that may be refused), one vector test instead of a
    Python call per cell; (None, all rows) when a column is not plainly numeric."""
    if not all(is_numeric_dtype(t) and not is_bool_dtype(t) for t in sub.dtypes):
        return None, np.ones(len(sub), dtype=bool)
    try:
        arr = sub.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):  # an exotic numeric dtype: judge it cell by cell
        return None, np.ones(len(sub), dtype=bool)
    bad = ~np.isfinite(arr) | (np.abs(arr) > FLOAT_LIMIT)
    if accepts_nan:
        bad &= ~np.isnan(arr)
    return arr, bad.any(axis=1)


def tabular_row_errors(
    df: pd.DataFrame, features: list[str], accepts_nan: bool = False
) -> list[InvalidInput | None]:
    """Per row, the error that row alone would get (None: fine); for callers that keep going."""
    return _row_errors(df, features, accepts_nan)[1]


def tabular_split(
    df: pd.DataFrame, features: list[str], accepts_nan: bool = False
) -> tuple[np.ndarray | None, list[str | None]]:
    """The rule once over a frame, keeping going: (the float array when every row passed the
    vector test, else None; per row its message without the position, or None)."""
    arr, errors = _row_errors(df, features, accepts_nan)
    return arr, [None if e is None else e.row_message for e in errors]


def _row_errors(
    df: pd.DataFrame, features: list[str], accepts_nan: bool
) -> tuple[np.ndarray | None, list[InvalidInput | None]]:
    cols = [str(c) for c in df.columns]
    try:
        check_columns(cols, features)
    except InvalidInput:  # a column problem is every row's problem
        return None, [invalid(i, *_column_fault(cols, features)) for i in range(len(df))]
    out: list[InvalidInput | None] = [None] * len(df)
    arr, suspect = _vector_check(_in_order(df, features), accepts_nan)
    if arr is not None and not suspect.any():
        return arr, out
    rows = np.flatnonzero(suspect)  # only these need the per-cell rule (and its message)
    values = df[features].iloc[rows].to_numpy(dtype=object)
    for i, row in zip(rows.tolist(), values, strict=True):
        for f, v in zip(features, row, strict=True):
            why = cell_reason(v, accepts_nan)
            if why:
                out[i] = invalid(i, f, why)
                break
    return None, out


def _column_fault(cols: list[str], features: list[str]) -> tuple[str, str]:
    missing = [f for f in features if f not in cols]
    if missing:
        return missing[0], "missing feature"
    return next(c for c in cols if c not in features), "unexpected feature (not a model input)"


def text_reason(v: Any, max_chars: int | None = None) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "missing value"
    if not isinstance(v, str):
        return "not a string"
    if max_chars is not None and len(v) > max_chars:
        return f"longer than {max_chars} characters"
    return None


def check_text(data: Any, max_chars: int | None = None, column: str = "text") -> list[str]:
    """Strings (REST) or a DataFrame with the model's one string column -> the texts."""
    if isinstance(data, pd.DataFrame):
        check_columns([str(c) for c in data.columns], [column])
        data = data[column].tolist()
    for i, v in enumerate(data):
        why = text_reason(v, max_chars)
        if why:
            raise invalid(i, column, why)
    return list(data)


def check_output(records: list[dict], offset: int = 0) -> None:
    """Inputs the model takes can still overflow inside it: refuse what JSON cannot carry."""
    for i, r in enumerate(records):
        nums = [*r["prediction"], *r["base_values"], r["additivity_error"]]
        if not (np.isfinite(nums).all() and all(np.isfinite(v).all() for v in r["values"])):
            raise invalid(offset + i, None, "the model's output is not finite for these values")
