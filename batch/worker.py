"""Worker side of the batch job: the function Spark runs over Arrow batches (mapInArrow).

Runs in Spark's Python workers, so it holds none of the driver's state: everything it needs
travels in a small picklable `WorkerSpec`. The explainer is loaded once per worker process
(module-level cache) and called through its MLflow pyfunc, the same function the REST service
uses, so both give identical numbers. Each Arrow batch goes through the explainer in one call;
if that fails, the batch is redone row by row so only the failing rows become errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from eaas.batch.arrow_out import explanation_columns
from eaas.batch.spark_types import arrow_fields
from eaas.explain.isolate import batch_else_rows
from eaas.explain.schema import COLUMNS
from eaas.explain.validation import invalid, tabular_row_errors, text_reason

DEFAULT_MAX_TEXT_CHARS = 5000
THREAD_VARS = ("EAAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MAX_REASON_CHARS = 500

# explainer URI + tracking URI -> loaded pyfunc; lives as long as the (reused) worker process
_EXPLAINERS: dict[tuple[str, str], Any] = {}


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to explain rows; pickled into the mapInPandas closure."""

    uri: str  # models:/NAME-explainer/VERSION: a fixed version, so an alias move mid-job is moot
    tracking_uri: str
    registry_uri: str
    kind: str  # tabular | text
    features: tuple[str, ...]
    id_cols: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    num_threads: int = 1


def _prepare_process(spec: WorkerSpec) -> None:
    """Pin numeric threads and point MLflow at the job's registry, before the first load."""
    import mlflow

    from eaas.explain.pyfunc import pin_threads
    from eaas.explain.settings import core_settings

    for var in THREAD_VARS:
        os.environ[var] = str(spec.num_threads)
    core_settings.cache_clear()  # the loader reads EAAS_NUM_THREADS (xgboost nthread, torch)
    pin_threads(spec.num_threads)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ["MLFLOW_TRACKING_URI"] = spec.tracking_uri
    mlflow.set_tracking_uri(spec.tracking_uri)
    mlflow.set_registry_uri(spec.registry_uri)


def load_explainer(spec: WorkerSpec) -> Any:
    """The explainer pyfunc, loaded once per worker process (not per batch or task)."""
    key = (spec.uri, spec.tracking_uri)
    model = _EXPLAINERS.get(key)
    if model is None:
        import mlflow.pyfunc

        _prepare_process(spec)
        model = mlflow.pyfunc.load_model(spec.uri)
        _EXPLAINERS[key] = model
    return model


def reason(exc: BaseException) -> str:
    """One line for the `error` column: the core's own message, else the exception's first line."""
    msg = getattr(exc, "row_message", None) or getattr(exc, "message", None)
    if not msg:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""
        msg = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return msg[:MAX_REASON_CHARS]


def precheck(
    x: pd.DataFrame, spec: WorkerSpec, errors: list[str | None], accepts_nan: bool = False
) -> pd.DataFrame:
    """The core's one input rule, per row, so only the bad rows become errors: the same verdict
    and message the REST service and the pyfunc give, less the `instances[i].` position (the
    error sits on its row). CSV cells written as numbers are parsed first: a column with one
    bad cell is read as strings, and only that cell's row should fail."""
    if spec.kind == "text":
        for i, v in enumerate(x["text"]):
            why = text_reason(v, spec.max_text_chars)
            if why:
                hint = " (the batch limit; raise it with --max-text-chars)"
                errors[i] = invalid(i, "text", why).row_message + (hint if "longer" in why else "")
        return x
    x = _parse_text_numbers(x, spec)
    for i, err in enumerate(tabular_row_errors(x, list(spec.features), accepts_nan)):
        if err is not None:
            errors[i] = errors[i] or err.row_message
    return x


def _parse_text_numbers(x: pd.DataFrame, spec: WorkerSpec) -> pd.DataFrame:
    """Numbers written as text (CSV) -> numbers; anything else is left for the rule to judge."""
    x = x.copy()
    for f in spec.features:
        col = x[f]
        if not (pd.api.types.is_string_dtype(col) or col.dtype == object):
            continue
        x[f] = pd.Series([_number(v) for v in col], index=x.index, dtype=object)
    return x


def _number(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    s = v.strip()
    if s.lower() in ("", "nan", "null"):
        return None
    try:
        return float(s)
    except ValueError:
        return v


def _explain_rows(
    model: Any, x: pd.DataFrame, rows: list[int], params: dict, errors: list[str | None]
) -> dict[str, list]:
    """Explain `rows` of `x` as one call; on any failure, row by row (the core's helper)."""
    n = len(x)
    cols: dict[str, list] = {c: [None] * n for c in COLUMNS}
    results = batch_else_rows(lambda idx: _predict(model, x.iloc[idx], params), rows)
    for i, res in zip(rows, results, strict=True):
        if isinstance(res, BaseException):
            errors[i] = reason(res)
            continue
        for c in COLUMNS:
            cols[c][i] = res[c]
    return cols


def _predict(model: Any, x: pd.DataFrame, params: dict) -> list[dict]:
    out = model.predict(x.reset_index(drop=True), params=params or None)
    if len(out) != len(x):
        raise RuntimeError(f"explainer returned {len(out)} rows for {len(x)}")
    return out.to_dict("records")


def _checked(
    x: pd.DataFrame, spec: WorkerSpec, model: Any
) -> tuple[pd.DataFrame, list[str | None]]:
    """The feature rows after the core's input rule, and each row's error (None: fine)."""
    errors: list[str | None] = [None] * len(x)
    return precheck(x.reset_index(drop=True), spec, errors, _accepts_nan(model)), errors


def _explain_frame(
    x: pd.DataFrame, spec: WorkerSpec, model: Any, errors: list[str | None]
) -> dict[str, list]:
    """Explanation columns (None on error rows) for checked feature rows; fills `errors`."""
    rows = [i for i in range(len(x)) if errors[i] is None]
    cols = _explain_rows(model, x, rows, spec.params, errors)
    for c in COLUMNS:  # a row that failed after its batch call keeps nothing half-done
        cols[c] = [v if errors[i] is None else None for i, v in enumerate(cols[c])]
    return cols


def _accepts_nan(model: Any) -> bool:
    """Whether the explainer's source model routes missing values (xgboost, lightgbm)."""
    engine = getattr(_python_model(model), "engine", None)
    if engine is None:  # not an eaas pyfunc: let its own predict judge missing values
        return True
    return bool(engine.source.accepts_nan)


def _status(errors: list[str | None]) -> list[str]:
    return ["ok" if e is None else "error" for e in errors]


def explain_batch(pdf: pd.DataFrame, spec: WorkerSpec, model: Any) -> pd.DataFrame:
    """pandas in, pandas out: ids, Explanation columns, status and error (one row per row)."""
    pdf = pdf.reset_index(drop=True)
    x, errors = _checked(pdf[list(spec.features)], spec, model)
    cols = _explain_frame(x, spec, model, errors)
    out = pdf[list(spec.id_cols)].copy()
    for c in COLUMNS:
        out[c] = pd.Series(cols[c], dtype=object)
    out["status"] = _status(errors)
    out["error"] = pd.Series(errors, dtype=object)
    return out


def explain_record_batch(batch: pa.RecordBatch, spec: WorkerSpec, model: Any) -> pa.RecordBatch:
    """Arrow in, Arrow out: the id columns pass through untouched (exact types, no pandas trip)."""
    x, errors = _checked(batch.select(list(spec.features)).to_pandas(), spec, model)
    fields = arrow_fields(spec.kind)
    clean = all(e is None for e in errors)
    arrays = _fast_columns(x, spec, model, fields) if clean else None
    if arrays is None:
        cols = _explain_frame(x, spec, model, errors)
        arrays = [pa.array(cols[f.name], type=f.type) for f in fields[: len(COLUMNS)]]
    arrays += [pa.array(_status(errors), pa.string()), pa.array(errors, pa.string())]
    ids = [batch.column(c) for c in spec.id_cols]
    schema = pa.schema([batch.schema.field(c) for c in spec.id_cols] + fields)
    return pa.RecordBatch.from_arrays(ids + arrays, schema=schema)


def _fast_columns(
    x: pd.DataFrame, spec: WorkerSpec, model: Any, fields: list[pa.Field]
) -> list[pa.Array] | None:
    """Checked, all-valid tabular rows explained in one engine call and written to Arrow from
    its arrays; None sends the batch down the per-row path (text, a failing call, a model that
    is not an eaas pyfunc), which gives the same numbers for the rows that succeed."""
    engine = getattr(_python_model(model), "engine", None)
    if spec.kind != "tabular" or engine is None or len(x) == 0:
        return None
    try:
        exp = engine.explain_arrays(x, spec.params)
    except Exception:  # noqa: BLE001 - the per-row path finds and reports the failing rows
        return None
    return explanation_columns(exp, fields[: len(COLUMNS)])


def _python_model(model: Any) -> Any:
    try:
        return model.unwrap_python_model()
    except (AttributeError, ValueError):
        return None


def make_mapper(
    spec: WorkerSpec,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function: a closure over `spec` only (cheap to pickle)."""

    def explain_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = None
        for batch in batches:
            if model is None:  # not before the first batch: empty partitions load nothing
                model = load_explainer(spec)
            yield explain_record_batch(batch, spec, model)

    return explain_partition
