"""The batch job: read a dataset, explain every row, write typed Parquet, check, commit.

Run it as `eaas batch ...`, as `python -m eaas.batch.command ...`, or hand `command.py` to
spark-submit (all take the options declared once there):
`spark-submit --master spark://HOST:7077 \
"$(python -c 'import eaas.batch.command as c; print(c.__file__)')" \
--model NAME@champion --input ... --output ...` (the master then comes from spark-submit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from eaas.batch import output
from eaas.batch.frame import ExplainerInfo, plan
from eaas.batch.progress import StageProgress
from eaas.batch.session import start_session
from eaas.explain.errors import BadRequest
from eaas.explain.registry import configure, resolve_explainer
from eaas.explain.settings import DEFAULT_MAX_TEXT_CHARS, CoreSettings

FORMATS = ("parquet", "csv")
# Parquet dictionaries pay off for repeated strings (features, output_names) but not for the
# double lists, whose values rarely repeat: off for those, the JVM's Parquet write cost about
# halves (50k tree rows: 0.4-0.8 CPU s less of ~5 s for explain + write; files 13% larger).
# Mixed-type `data` (a struct per value) keeps the dictionary for its strings (categories).
NO_DICTIONARY = ("values.list.element.list.element", "data.list.element",
                 "data.list.element.number", "prediction.list.element",
                 "base_values.list.element")  # fmt: skip


@dataclass
class JobSpec:
    model: str
    input: str
    output: str
    id_cols: list[str] | None = None
    master: str | None = None
    format: str | None = None
    max_evals: int | None = None
    seed: int | None = None
    partitions: int | None = None
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    conf: dict[str, str] = field(default_factory=dict)
    long_text: str | None = None  # text models: truncate | window (default: the explainer's)
    settings: CoreSettings = field(default_factory=CoreSettings)  # read once, for the whole job
    tolerance: float | None = None  # sampled methods (default: the explainer's)


@dataclass(frozen=True)
class JobResult:
    rows_in: int
    rows_ok: int
    rows_error: int
    seconds: float
    output: str

    @property
    def rows_per_s(self) -> float:
        return self.rows_in / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"summary: rows_in={self.rows_in} rows_ok={self.rows_ok} "
            f"rows_error={self.rows_error} seconds={self.seconds:.1f} "
            f"rows_per_s={self.rows_per_s:.1f} output={self.output}"
        )


def input_format(path: str, fmt: str | None) -> str:
    """`--format` if given, else from the extension; Parquet otherwise (folders too)."""
    fmt = (fmt or "").lower() or ("csv" if path.rstrip("/").lower().endswith(".csv") else "parquet")
    if fmt not in FORMATS:
        raise BadRequest(f"format: expected parquet or csv, got '{fmt}'", field="format")
    return fmt


def read_input(spark: SparkSession, path: str, fmt: str | None = None) -> DataFrame:
    """Parquet, or CSV with a header (types inferred; quoted multi-line texts allowed)."""
    fmt = input_format(path, fmt)
    try:
        if fmt == "csv":
            reader = spark.read.options(header=True, inferSchema=True, multiLine=True, escape='"')
            return reader.csv(path)
        return spark.read.parquet(path)
    except AnalysisException as exc:
        raise BadRequest(f"input: {_first_line(exc)}", field="input") from None


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "getMessage", lambda: str(exc))() or str(exc)
    return text.strip().splitlines()[0][:300]


def _partitions(spark: SparkSession, df: DataFrame, job: JobSpec) -> int | None:
    """Asked-for count, else one per core when the input has few splits or may be lopsided.

    A small Parquet file splits into as many tasks as cores, but a row group is read by one of
    them only: a file with fewer row groups than cores is lopsided, so it is evened out by a
    shuffle. A local Parquet input with enough row groups is read as it is (no shuffle).
    """
    if job.partitions is not None:
        if job.partitions < 1:
            raise BadRequest("partitions: must be at least 1", field="partitions")
        return job.partitions
    have, cores = df.rdd.getNumPartitions(), spark.sparkContext.defaultParallelism
    if have >= cores and _row_groups(job.input, job.format) >= cores:
        return None
    return cores if have < 2 * cores else None


def _row_groups(path: str, fmt: str | None) -> int:
    """Row groups of a local Parquet input, from its footers; 0 when unknown (remote, CSV)."""
    if input_format(path, fmt) != "parquet" or "://" in path.replace("file://", ""):
        return 0
    try:
        import pyarrow.dataset as ds

        local = path.removeprefix("file://").removeprefix("file:")
        return sum(f.num_row_groups for f in ds.dataset(local, format="parquet").get_fragments())
    except (OSError, ValueError, TypeError):  # unreadable here: keep the safe rule
        return 0


def _execute(
    spark: SparkSession, job: JobSpec, info: ExplainerInfo, progress: StageProgress
) -> tuple[output.Counts, str]:
    progress.set_phase(f"reading {job.input}")
    src = read_input(spark, job.input, job.format)
    params = info.params(max_evals=job.max_evals, seed=job.seed, long_text=job.long_text,
                         tolerance=job.tolerance)
    parts = _partitions(spark, src, job)
    out, ids = plan(  # the input's columns checked once, here
        src, info, job.id_cols, params, job.max_text_chars, parts, job.settings.num_threads
    )
    st = output.stage(spark, job.output)
    if output.same_path(spark, job.input, st.final_uri):
        raise BadRequest("output: must not be the input path", field="output")
    try:
        progress.set_phase(f"explaining with {info.uri} ({parts or 'input'} partitions)")
        # rows per Arrow batch, the input rule's: big for fast tabular methods, small for text
        batch_rows = str(info.inputs.batch_rows)
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", batch_rows)
        writer = out.write.mode("overwrite")
        for column in NO_DICTIONARY:
            writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
        writer.parquet(st.tmp_uri)
        progress.set_phase("checking row counts and ids")
        counts = output.check(src, spark.read.parquet(st.tmp_uri), ids)
        output.commit(st)
        progress.set_phase(f"committed {st.final_uri}")
    finally:
        output.discard(st)
    return counts, st.final_uri


def run_job(job: JobSpec, echo: Callable[[str], None] = print) -> JobResult:
    """Run the whole job; raises EaasError (one-line message) on anything the user can fix."""
    t0 = time.monotonic()
    configure(job.settings)
    info = ExplainerInfo.load(resolve_explainer(job.model))  # before Spark starts: fail fast
    input_format(job.input, job.format)
    spark, ours = start_session(job.master, job.conf, job.settings)
    try:
        with StageProgress(spark.sparkContext, echo) as progress:
            counts, final = _execute(spark, job, info, progress)
    finally:
        if ours:
            spark.stop()
    seconds = time.monotonic() - t0
    return JobResult(counts.rows_in, counts.rows_ok, counts.rows_error, seconds, final)


def parse_conf(items: Sequence[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadRequest(f"conf: expected KEY=VALUE, got '{item}'", field="conf")
        out[key.strip()] = value
    return out


def split_cols(value: str | None) -> list[str] | None:
    if value is None:
        return None
    cols = [c.strip() for c in value.split(",") if c.strip()]
    if not cols:
        raise BadRequest("id-cols: give at least one column name", field="id_cols")
    return cols
