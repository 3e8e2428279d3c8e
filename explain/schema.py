"""The Explanation schema, declared once: one field table from which the pyfunc's MLflow
signature, the Spark/Arrow column types (`batch/spark_types.py`) and the REST response model
(`api/schemas.py`) are all made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types import DataType
from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

# Logical types, mapped by each adapter to its own type system:
#   strings: list of str · doubles: list of float · matrix: list of list of float
#   data: the inputs as explained, typed by the explainer's input rule (`data_type`):
#     "double" (numbers-only tabular): list of float, null = missing
#     "string" (text): list of str, the words
#     "value"  (tabular with strings, categories or booleans): JSON and the pyfunc frame hold
#              each value as the model received it (number, string, boolean or null); Spark,
#              Arrow and Parquet hold list<struct<number: double, text: string>>, a number (a
#              boolean as 1.0/0.0) in `number`, a string in `text`, both null when missing.
#              `to_typed`/`from_typed` convert; every reader goes through `from_typed`.
#   errors: a matrix like `values`, or null where the method estimates no error
#   double · bool


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    description: str


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("output_names", "strings", "Names of the explained outputs (classes)."),
    FieldSpec("prediction", "doubles", "The model's own output per output, in the output space."),
    FieldSpec("base_values", "doubles", "Expected output per output (the explanation's start)."),
    FieldSpec("values", "matrix", "values[o][f]: attribution of feature/word f to output o."),
    FieldSpec("features", "strings", "Feature names, or the words of a text as written."),
    FieldSpec("data", "data", "The explained inputs (numbers; words for text; null = missing)."),
    FieldSpec("additivity_error", "double", "max_o |base + sum(values[o]) - prediction[o]|."),
    FieldSpec(
        "approximation_error",
        "errors",
        "approximation_error[o][f]: the standard error of values[o][f] as an estimate of the "
        "Shapley value (sampled methods: from the spread of their samples; 0 for exact "
        "methods; null where the method estimates none: partition's Owen values, integrated "
        "gradients, or a sample too small to show a spread).",
    ),
    FieldSpec(
        "tolerance_met",
        "bool",
        "The error is within parameters.tolerance of |prediction - base value| for every "
        "output (always true for exact methods, false where no error is estimated).",
    ),
    FieldSpec(
        "truncated",
        "bool",
        "True when the model saw only part of the input (text longer than the model's limit "
        "under long_text=truncate): words not listed were never seen, not unimportant.",
    ),
)
COLUMNS = [f.name for f in FIELDS]
# fields added after explanations were first written (batch outputs, the store): a reader
# takes their absence as "not recorded", never as a malformed input
ADDED = ("approximation_error", "tolerance_met")
REQUIRED = [c for c in COLUMNS if c not in ADDED]

LONG_TEXT = ("truncate", "window")


@dataclass
class Explanations:
    """A batch of explanations in array form, before it becomes the typed DataFrame.

    `values[i]` is (outputs, features_i); text rows have their own token count, tabular rows
    share one. `prediction` is the model's own output, so `additivity_error` is measured, not
    assumed.
    """

    output_names: list[str]
    prediction: np.ndarray  # (n, outputs)
    base_values: np.ndarray  # (n, outputs)
    values: list[np.ndarray] | np.ndarray  # n x (outputs, features_i); tabular: (n, k, f)
    features: list[list[str]]
    data: list[list] | np.ndarray  # tabular: the (n, features) float array
    truncated: list[bool] = field(default_factory=list)  # empty: nothing was cut
    # standard errors shaped as `values`, NaN where none is estimated; None: exact (all 0)
    errors: list[np.ndarray] | np.ndarray | None = None
    met: list[bool] | np.ndarray | None = None  # within the tolerance; None: exact (all true)

    def error_rows(self) -> list[list[list[float]] | None]:
        """Each row's `approximation_error`: its matrix, or None where it holds a NaN."""
        if self.errors is None:
            return [np.zeros(np.shape(v)).tolist() for v in self.values]
        out: list[list[list[float]] | None] = []
        for e in self.errors:
            e = np.asarray(e, dtype=float)
            out.append(None if np.isnan(e).any() else e.tolist())
        return out

    def met_rows(self) -> list[bool]:
        if self.met is None:
            return [self.errors is None] * len(self.values)
        return [bool(m) for m in self.met]

    def additivity_errors(self) -> np.ndarray:
        dense = self.dense_values()
        if dense is not None:
            sums = dense.sum(axis=2)
        else:
            sums = np.array([v.sum(axis=1) for v in self.values]).reshape(self.prediction.shape)
        return np.abs(self.base_values + sums - self.prediction).max(axis=1)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.to_records(), columns=COLUMNS)

    def to_records(self) -> list[dict]:
        """One plain dict per instance (JSON-ready apart from NaN inputs in `data`)."""
        # ndarray.tolist() makes the Python floats in C: several times faster than float(x)
        errors = self.additivity_errors().tolist()
        cut = self.truncated or [False] * len(self.values)
        pred, base = np.asarray(self.prediction).tolist(), np.asarray(self.base_values).tolist()
        data = self.data.tolist() if isinstance(self.data, np.ndarray) else self.data
        names = list(self.output_names)
        approx, met = self.error_rows(), self.met_rows()
        return [
            {
                "output_names": list(names),
                "prediction": pred[i],
                "base_values": base[i],
                "values": np.asarray(self.values[i], dtype=float).tolist(),
                "features": list(self.features[i]),
                "data": list(data[i]),
                "additivity_error": errors[i],
                "approximation_error": approx[i],
                "tolerance_met": met[i],
                "truncated": bool(cut[i]),
            }
            for i in range(len(self.values))
        ]

    def all_finite(self) -> bool:
        """What `check_output` asks of every record, as vector tests over the whole batch."""
        dense = self.dense_values()
        values_ok = (np.isfinite(dense).all() if dense is not None
                     else all(np.isfinite(v).all() for v in self.values))  # fmt: skip
        return bool(
            values_ok
            and np.isfinite(self.prediction).all()
            and np.isfinite(self.base_values).all()
            and np.isfinite(self.additivity_errors()).all()
        )

    def dense_values(self) -> np.ndarray | None:
        """`values` as one (n, outputs, features) array when every row has the same shape
        (tabular), else None (text rows have their own word counts)."""
        if isinstance(self.values, np.ndarray) and self.values.ndim == 3:
            return self.values
        if len(self.values) == 0 or len({np.shape(v) for v in self.values}) != 1:
            return None
        return np.asarray(self.values, dtype=float)


DATA_TYPES = ("double", "string", "value")
VALUE_FIELDS = ("number", "text")  # the struct of one "value" in Spark, Arrow and Parquet


def to_typed(values: list[Any]) -> list[dict[str, Any]]:
    """One row's `data` ("value") -> the struct form Spark, Arrow and Parquet hold."""
    out: list[dict[str, Any]] = []
    for v in values:
        if isinstance(v, str):
            out.append({"number": None, "text": v})
        elif v is None or (isinstance(v, float) and v != v):
            out.append({"number": None, "text": None})
        else:
            out.append({"number": float(v), "text": None})
    return out


def typed_data(rows: list[Any]) -> list[Any]:
    """One Parquet type for the `data` column: numbers (null = missing) or words as they are;
    rows that mix strings, booleans and numbers (mixed-type explainers), and with them every
    row, in the struct form (`to_typed`; read back with `from_typed`)."""
    kinds = {_kind(v) for d in rows if d is not None for v in d}
    if kinds <= {"number", None} or kinds <= {"text"}:
        return rows
    return [None if d is None else to_typed(list(d)) for d in rows]


def _kind(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return "text"
    return "bool" if isinstance(v, bool) else "number"


def from_typed(values: Any) -> list[Any]:
    """One row's `data` as read back (plain values, or the struct form) -> plain values: a
    string, a number or None. A reader never needs to know which form it got."""
    out = []
    for v in values if values is not None else []:
        if isinstance(v, dict):
            text, number = v.get("text"), v.get("number")
            out.append(text if text is not None else (None if number is None else number))
        else:
            out.append(v)
    return out


def _mlflow_type(logical: str, data_type: str) -> Any:
    data: Any = {"string": DataType.string, "double": DataType.double}.get(data_type)
    if data is None:  # "value": numbers, strings, booleans and nulls side by side
        from mlflow.types.schema import AnyType

        data = AnyType()
    return {
        "strings": Array(DataType.string),
        "doubles": Array(DataType.double),
        "matrix": Array(Array(DataType.double)),
        "errors": Array(Array(DataType.double)),
        "data": Array(data),
        "double": DataType.double,
        "bool": DataType.boolean,
    }[logical]


def signature(data_type: str, params: tuple[str, ...], defaults: Any) -> ModelSignature:
    """Output and params schema; MLflow's spark_udf infers a struct result type from it.

    `data_type` ("double" | "string" | "value") and `params` (the parameters that apply) come
    from the explainer's input rule (explain/inputs.py); `defaults` (validation.Params) are
    the explainer's default values.

    The input schema is left out on purpose: MLflow would otherwise drop extra columns with a
    warning before the explainer sees them, and the contract is that an extra column is an error.
    The inputs are in the explainer config and checked by the core (explain/validation.py).
    """
    outputs = Schema([ColSpec(_mlflow_type(f.type, data_type), f.name) for f in FIELDS])
    every = {
        "max_evals": ParamSpec("max_evals", DataType.long, defaults.max_evals),
        "seed": ParamSpec("seed", DataType.long, defaults.seed),
        "long_text": ParamSpec("long_text", DataType.string, defaults.long_text),
        "tolerance": ParamSpec("tolerance", DataType.double, defaults.tolerance),
    }
    specs = [every[name] for name in params]
    return ModelSignature(inputs=None, outputs=outputs, params=ParamSchema(specs))
