"""The explanation engine: source model + method + background + config -> Explanation rows.

This is what the pyfunc wraps; the REST service and the Spark UDF both go through it, so they
return identical numbers. Input checks name the field and the reason.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from explain.errors import BadRequest, InvalidInput
from explain.schema import COLUMNS
from explain.source import SourceModel
from explain.tabular import make_tabular
from explain.text import make_text

METHODS = ("tree", "linear", "permutation", "partition", "kernel", "text", "integrated-gradients")


@dataclass
class ExplainerConfig:
    """Everything needed to rebuild the explainer, stored as JSON next to the bundle."""

    method: str
    kind: str
    output_space: str
    features: list[str]
    output_names: list[str]
    max_evals: int
    seed: int
    source_name: str = ""
    source_version: str = ""
    background_rows: int = 0
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExplainerConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def params(self) -> dict[str, Any]:
        return {"max_evals": self.max_evals, "seed": self.seed}


def choose_method(source: SourceModel, method: str) -> str:
    """`auto` picks from the model's family; anything else must be a known method."""
    if method == "auto":
        return {"text": "text", "tree": "tree", "linear": "linear"}.get(
            source.family, "permutation"
        )
    if method not in METHODS:
        raise BadRequest(f"method: unknown '{method}'; use auto or one of {', '.join(METHODS)}")
    return method


class Engine:
    def __init__(
        self, source: SourceModel, method: str, background: pd.DataFrame | None, config: dict
    ) -> None:
        self.source = source
        # shap explainers and maskers keep per-call state, and sampled methods reseed numpy's
        # global generator: one explanation at a time per engine, whatever thread asks
        self._lock = threading.Lock()
        if source.kind == "text":
            self.impl = make_text(method, source)
        else:
            self.impl = make_tabular(method, source, background)
        self.config = ExplainerConfig.from_dict(
            {
                **config,
                "method": method,
                "kind": source.kind,
                "features": source.feature_names,
                "output_names": source.output_names,
                "output_space": self.impl.output_space,
            }
        )

    def explain(self, df: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Explain every row of `df`; one output row per input row, in order."""
        return pd.DataFrame(self.explain_records(df, params), columns=COLUMNS)

    def explain_records(self, df: pd.DataFrame, params: dict[str, Any] | None = None) -> list:
        """As `explain`, as plain dicts (the service skips a DataFrame round trip)."""
        max_evals, seed = self._params(params or {})
        if len(df) == 0:
            return []
        if self.source.kind == "text":
            data = check_text_input(df)
        else:
            data = check_tabular_input(df, self.source.feature_names, self.source.accepts_nan)
        with self._lock:
            out = self.impl.explain(data, max_evals, seed)
        return out.to_records()

    def _params(self, params: dict[str, Any]) -> tuple[int, int]:
        unknown = sorted(set(params) - {"max_evals", "seed"})
        if unknown:
            raise BadRequest(f"parameters: unknown '{unknown[0]}'", field=unknown[0])
        max_evals = params.get("max_evals")
        seed = params.get("seed")
        max_evals = self.config.max_evals if max_evals is None else max_evals
        seed = self.config.seed if seed is None else seed
        for name, v in (("max_evals", max_evals), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InvalidInput(f"{name}: must be an integer", field=name)
        if max_evals < 1:
            raise InvalidInput("max_evals: must be at least 1", field="max_evals")
        return int(max_evals), int(seed)


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
