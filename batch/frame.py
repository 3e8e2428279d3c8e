"""Driver side: plan the explanation of a Spark DataFrame (the Python API of the batch job)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlflow
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from eaas.batch.spark_types import output_schema
from eaas.batch.worker import WorkerSpec, make_mapper
from eaas.explain.config import ExplainerConfig
from eaas.explain.errors import BadRequest, InvalidInput
from eaas.explain.inputs import InputRule
from eaas.explain.registry import ExplainerTarget, configure, resolve_explainer, tracking_uri
from eaas.explain.schema import COLUMNS
from eaas.explain.settings import DEFAULT_MAX_TEXT_CHARS, CoreSettings
from eaas.explain.validation import check_params

STATUS_COLUMNS = ["status", "error"]
OUTPUT_COLUMNS = COLUMNS + STATUS_COLUMNS


def col(name: str) -> Any:
    """A column by its exact name, even with dots or spaces in it."""
    return F.col("`" + name.replace("`", "``") + "`")


@dataclass(frozen=True)
class ExplainerInfo:
    """What the driver needs from the registered explainer, read from its MLmodel metadata
    (the driver never loads the model itself)."""

    uri: str
    config: ExplainerConfig

    @classmethod
    def load(cls, target: ExplainerTarget) -> ExplainerInfo:
        meta = (mlflow.models.get_model_info(target.explainer_uri).metadata or {}).get("eaas")
        if not meta:
            raise BadRequest(f"model: '{target.explainer.name}' is not an eaas explainer")
        return cls(target.explainer_uri, ExplainerConfig.from_dict(meta))

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.config.features)

    @property
    def inputs(self) -> InputRule:
        """The explainer's input rule, from its config (mixed-type columns included)."""
        return self.config.inputs

    def params(self, **given: Any) -> dict[str, Any]:
        """The given parameters that apply to this explainer (long_text only where the input
        rule takes it), None left out: the explainer's defaults fill them."""
        return {k: v for k, v in given.items() if k in self.inputs.params and v is not None}


def check_columns(df: DataFrame, info: ExplainerInfo, id_cols: Sequence[str] | None) -> list[str]:
    """The id columns to keep; the model's features must be in the input."""
    names = list(df.columns)
    missing = [f for f in info.features if f not in names]
    if missing:
        raise InvalidInput(
            f"input: missing column '{missing[0]}' (the model takes: {', '.join(info.features)})",
            field=missing[0],
        )
    ids = names if id_cols is None else list(id_cols)
    unknown = [c for c in ids if c not in names]
    if unknown:
        raise BadRequest(f"id-cols: no column '{unknown[0]}' in the input", field="id_cols")
    clash = [c for c in ids if c in OUTPUT_COLUMNS]
    if clash:
        raise BadRequest(
            f"id-cols: '{clash[0]}' is also an output column; pick other id columns (--id-cols)",
            field="id_cols",
        )
    if len(set(ids)) != len(ids):
        raise BadRequest("id-cols: a column is named twice", field="id_cols")
    return ids


def plan(
    df: DataFrame,
    info: ExplainerInfo,
    id_cols: Sequence[str] | None = None,
    params: dict[str, Any] | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    partitions: int | None = None,
    num_threads: int = 1,
) -> tuple[DataFrame, list[str]]:
    """The lazy output DataFrame (ids, typed Explanation columns, status, error) and the id
    columns kept; the input's columns are checked here, once."""
    ids = check_columns(df, info, id_cols)
    if max_text_chars < 1:
        raise BadRequest("max-text-chars: must be at least 1", field="max_text_chars")
    # the core's one check, on the driver: a bad parameter fails the job before Spark runs it
    given = {k: v for k, v in (params or {}).items() if v is not None}
    check_params(given, info.config.defaults)
    uri = tracking_uri()
    spec = WorkerSpec(
        uri=info.uri,
        tracking_uri=uri,
        registry_uri=os.environ.get("MLFLOW_REGISTRY_URI", uri),
        features=info.features,
        id_cols=tuple(ids),
        params=given,
        max_text_chars=max_text_chars,
        num_threads=num_threads,
    )
    src = df.select(*[col(c) for c in ids + [f for f in info.features if f not in ids]])
    if partitions:
        src = src.repartition(partitions)
    # Arrow in and out: id columns pass through untouched, only features become pandas
    schema = output_schema(src.schema, ids, info.inputs.data_type)
    return src.mapInArrow(make_mapper(spec), schema), ids


def explain_dataframe(
    df: DataFrame,
    model: str,
    id_cols: Sequence[str] | None = None,
    max_evals: int | None = None,
    seed: int | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    partitions: int | None = None,
    long_text: str | None = None,
    settings: CoreSettings | None = None,
    tolerance: float | None = None,
) -> DataFrame:
    """Explain every row of a Spark DataFrame with the explainer of a registered model.

    `model` is NAME, NAME@ALIAS or NAME/VERSION of the source model or of its explainer. Lazy:
    nothing runs until an action. Python workers must be able to reach the same MLflow registry.
    """
    settings = settings or CoreSettings()
    configure(settings)
    info = ExplainerInfo.load(resolve_explainer(model))
    params = info.params(max_evals=max_evals, seed=seed, long_text=long_text,
                         tolerance=tolerance)
    return plan(df, info, id_cols, params, max_text_chars, partitions, settings.num_threads)[0]
