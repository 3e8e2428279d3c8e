"""The one input check: the REST service, the pyfunc and the Spark worker all call these, so a
bad value gets the same verdict and the same message whichever way it came in.

Messages name the field (`parameters.<name>`, a feature column, `text`) and the reason, and never
echo the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from explain.errors import InvalidInput
from explain.schema import LONG_TEXT

PARAMS = ("max_evals", "seed", "long_text")
SEED_MAX = 2**32 - 1  # numpy's seed range


@dataclass(frozen=True)
class Params:
    """Validated explanation parameters, defaults filled from the explainer's config."""

    max_evals: int
    seed: int
    long_text: str


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
    return Params(max_evals, seed, long_text)


def check_tabular_input(
    df: pd.DataFrame, features: list[str], allow_nan: bool = False
) -> pd.DataFrame:
    """The model's feature columns as float64, or InvalidInput naming the first bad field."""
    cols = [str(c) for c in df.columns]
    missing = [f for f in features if f not in cols]
    if missing:
        raise InvalidInput(f"{missing[0]}: missing feature column", field=missing[0])
    extra = [c for c in cols if c not in features]
    if extra:
        raise InvalidInput(f"{extra[0]}: unexpected column (not a model feature)", field=extra[0])
    sub = df[features]
    if all(is_numeric_dtype(t) and not is_bool_dtype(t) for t in sub.dtypes):
        arr = sub.to_numpy(dtype=float)  # fast path: one conversion, not one per column
        bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
        if not bad.any():
            return pd.DataFrame(arr, columns=features, index=df.index)
    out = {}
    for f in features:
        col = df[f]
        try:
            arr = pd.to_numeric(col, errors="raise").to_numpy(dtype=float)
        except (ValueError, TypeError):
            raise InvalidInput(f"{f}: not a number", field=f) from None
        if col.dtype == object and any(isinstance(v, (str, bool)) for v in col):
            raise InvalidInput(f"{f}: not a number", field=f)
        if not allow_nan and np.isnan(arr).any():
            raise InvalidInput(f"{f}: missing value (NaN) and the model cannot take it", field=f)
        if np.isinf(arr).any():
            raise InvalidInput(f"{f}: infinite value", field=f)
        out[f] = arr
    return pd.DataFrame(out, index=df.index)


def check_text_input(df: pd.DataFrame) -> list[str]:
    cols = [str(c) for c in df.columns]
    if "text" not in cols:
        raise InvalidInput("text: missing column", field="text")
    extra = [c for c in cols if c != "text"]
    if extra:
        raise InvalidInput(
            f"{extra[0]}: unexpected column (text models take 'text')", field=extra[0]
        )
    texts = []
    for v in df["text"]:
        if not isinstance(v, str):
            bad = v is None or (isinstance(v, float) and math.isnan(v))
            raise InvalidInput(
                "text: " + ("missing value" if bad else "not a string"), field="text"
            )
        texts.append(v)
    return texts
