"""Worker side of the batch job: the function Spark runs over Arrow batches (mapInArrow).

Runs in Spark's Python workers, so it holds none of the driver's state: everything it needs
travels in a small picklable `WorkerSpec`. The explainer's engine is loaded once per worker
process (module-level cache) through the core's one loader, the one the REST service uses, so
both give identical numbers. Each Arrow batch is checked once (the input rule, row by row where a
row is bad) and explained in one engine call; if that call fails, the batch is redone row by row
so only the failing rows become errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from eaas.batch.arrow_out import explanation_columns, record_column
from eaas.batch.spark_types import arrow_fields
from eaas.explain.engine import Checked, Engine
from eaas.explain.errors import one_line
from eaas.explain.isolate import batch_else_rows
from eaas.explain.schema import COLUMNS, Explanations
from eaas.explain.settings import DEFAULT_MAX_TEXT_CHARS

THREAD_VARS = ("EAAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MAX_REASON_CHARS = 500
LIMIT_HINT = " (the batch limit; raise it with --max-text-chars)"

# explainer URI + tracking URI -> loaded engine; lives as long as the (reused) worker process
_ENGINES: dict[tuple[str, str], Engine] = {}


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to explain rows; pickled into the mapInArrow closure."""

    uri: str  # models:/NAME-explainer/VERSION: a fixed version, so an alias move mid-job is moot
    tracking_uri: str
    registry_uri: str
    features: tuple[str, ...]
    id_cols: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    num_threads: int = 1


def _prepare_process(spec: WorkerSpec) -> None:
    """Pin numeric threads and point MLflow at the job's registry, before the first load."""
    import mlflow

    from eaas.explain.pyfunc import pin_threads

    for var in THREAD_VARS:
        os.environ[var] = str(spec.num_threads)
    pin_threads(spec.num_threads)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ["MLFLOW_TRACKING_URI"] = spec.tracking_uri
    mlflow.set_tracking_uri(spec.tracking_uri)
    mlflow.set_registry_uri(spec.registry_uri)


def load_engine(spec: WorkerSpec) -> Engine:
    """The explainer's engine, loaded once per worker process (not per batch or task)."""
    key = (spec.uri, spec.tracking_uri)
    engine = _ENGINES.get(key)
    if engine is None:
        from eaas.explain.pyfunc import load_explainer

        _prepare_process(spec)
        engine = load_explainer(spec.uri)
        _ENGINES[key] = engine
    return engine


def reason(exc: BaseException) -> str:
    """One line for the `error` column: the core's message for the row, else the exception's."""
    return (getattr(exc, "row_message", None) or one_line(exc, MAX_REASON_CHARS))[:MAX_REASON_CHARS]


def _status(errors: list[str | None]) -> list[str]:
    return ["ok" if e is None else "error" for e in errors]


def explain_record_batch(batch: pa.RecordBatch, spec: WorkerSpec, engine: Engine) -> pa.RecordBatch:
    """Arrow in, Arrow out: the id columns pass through untouched (exact types, no pandas trip)."""
    x = batch.select(list(spec.features)).to_pandas()
    checked, ok, errors = engine.check_rows(x, spec.params, spec.max_text_chars, LIMIT_HINT)
    out_fields = arrow_fields(engine.inputs.data_type)  # the Explanation, status, error
    fields = out_fields[: len(COLUMNS)]
    arrays = _whole(engine, checked, fields) if len(ok) == len(x) and len(x) else None
    if arrays is None:
        arrays = _by_rows(engine, checked, ok, errors, fields)
    arrays += [pa.array(_status(errors), pa.string()), pa.array(errors, pa.string())]
    ids = [batch.column(c) for c in spec.id_cols]
    schema = pa.schema([batch.schema.field(c) for c in spec.id_cols] + out_fields)
    return pa.RecordBatch.from_arrays(ids + arrays, schema=schema)


def _whole(engine: Engine, checked: Checked, fields: list[pa.Field]) -> list[pa.Array] | None:
    """A batch whose rows all passed the rule, in one engine call; None sends it down the
    per-row path (a failing call), which gives the same numbers for the rows that succeed."""
    try:
        exp = engine.explain_arrays(checked)
    except Exception:  # noqa: BLE001 - the per-row path finds and reports the failing rows
        return None
    return explanation_columns(exp, fields) or _from_records(exp, fields)


def _from_records(exp: Explanations, fields: list[pa.Field]) -> list[pa.Array]:
    """Rows that do not share one shape (text: each its own words), via plain records."""
    records = exp.to_records()
    return [record_column([r[f.name] for r in records], f.type) for f in fields]


def _by_rows(
    engine: Engine, checked: Checked, ok: list[int], errors: list[str | None],
    fields: list[pa.Field],
) -> list[pa.Array]:
    """The good rows in one call, else one by one (the core's helper); error rows stay null."""
    n = len(errors)
    cols: dict[str, list] = {c: [None] * n for c in COLUMNS}
    results = batch_else_rows(
        lambda idx: engine.explain_records(checked.take(idx)), list(range(len(ok)))
    )
    for i, res in zip(ok, results, strict=True):
        if isinstance(res, BaseException):
            errors[i] = reason(res)
            continue
        for c in COLUMNS:
            cols[c][i] = res[c]
    return [record_column(cols[f.name], f.type) for f in fields]


def make_mapper(
    spec: WorkerSpec,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function: a closure over `spec` only (cheap to pickle)."""

    def explain_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        engine = None
        for batch in batches:
            if engine is None:  # not before the first batch: empty partitions load nothing
                engine = load_engine(spec)
            yield explain_record_batch(batch, spec, engine)

    return explain_partition
