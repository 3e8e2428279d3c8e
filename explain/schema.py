"""The Explanation schema: one row per explained instance, typed columns, and its signature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types import DataType
from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

COLUMNS = [
    "output_names",
    "prediction",
    "base_values",
    "values",
    "features",
    "data",
    "additivity_error",
]


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
    values: list[np.ndarray]  # n x (outputs, features_i)
    features: list[list[str]]
    data: list[list]

    def additivity_errors(self) -> np.ndarray:
        sums = np.array([v.sum(axis=1) for v in self.values]).reshape(self.prediction.shape)
        return np.abs(self.base_values + sums - self.prediction).max(axis=1)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.to_records(), columns=COLUMNS)

    def to_records(self) -> list[dict]:
        """One plain dict per instance (JSON-ready apart from NaN inputs in `data`)."""
        errors = self.additivity_errors()
        return [
            {
                "output_names": list(self.output_names),
                "prediction": [float(x) for x in self.prediction[i]],
                "base_values": [float(x) for x in self.base_values[i]],
                "values": [[float(x) for x in row] for row in self.values[i]],
                "features": list(self.features[i]),
                "data": list(self.data[i]),
                "additivity_error": float(errors[i]),
            }
            for i in range(len(self.values))
        ]


def signature(kind: str, max_evals: int, seed: int) -> ModelSignature:
    """Output and params schema; MLflow's spark_udf infers a struct result type from it.

    The input schema is left out on purpose: MLflow would otherwise drop extra columns with a
    warning before the explainer sees them, and the contract is that an extra column is an error.
    The inputs are in the explainer config and checked by the engine.
    """
    data_type = DataType.string if kind == "text" else DataType.double
    outputs = Schema(
        [
            ColSpec(Array(DataType.string), "output_names"),
            ColSpec(Array(DataType.double), "prediction"),
            ColSpec(Array(DataType.double), "base_values"),
            ColSpec(Array(Array(DataType.double)), "values"),
            ColSpec(Array(DataType.string), "features"),
            ColSpec(Array(data_type), "data"),
            ColSpec(DataType.double, "additivity_error"),
        ]
    )
    params = ParamSchema(
        [ParamSpec("max_evals", DataType.long, max_evals), ParamSpec("seed", DataType.long, seed)]
    )
    return ModelSignature(inputs=None, outputs=outputs, params=params)
