"""Write the output where nobody sees it, check it, then make it visible in one rename.

Uses Hadoop's FileSystem through the JVM, so it works on any filesystem Spark writes to (local,
HDFS, S3A, GCS, ABFS). On object stores a rename is a copy: still all-or-nothing for readers of
the final path, just slower.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from batch.frame import col
from explain.errors import EaasError


class BatchCheckFailed(EaasError):
    """The written output does not match the input: nothing is committed."""

    status = 500
    code = "batch_check_failed"


@dataclass(frozen=True)
class Staging:
    """The final path and its temporary sibling, as Hadoop paths on their filesystem."""

    fs: Any
    final: Any
    tmp: Any

    @property
    def tmp_uri(self) -> str:
        return str(self.tmp.toString())

    @property
    def final_uri(self) -> str:
        return str(self.final.toString())


def _hadoop(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    fs = p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, fs.makeQualified(p)


def same_path(spark: SparkSession, a: str, b: str) -> bool:
    return str(_hadoop(spark, a)[1].toString()) == str(_hadoop(spark, b)[1].toString())


def stage(spark: SparkSession, output: str) -> Staging:
    """A staging folder next to the output (same filesystem, so the final rename is cheap).

    Layout `<parent>/_eaas_tmp_<id>/<name>`: readers of the parent skip the `_` folder, and the
    staged dataset keeps a plain leaf name (Spark ignores a path whose own name starts with `_`).
    """
    fs, final = _hadoop(spark, output)
    parent = final.getParent()
    if parent is None:
        raise EaasError(f"output: cannot write to the root of a filesystem ('{output}')")
    Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path  # noqa: N806 - a JVM class
    box = Path(parent, f"_eaas_tmp_{uuid.uuid4().hex[:12]}")
    return Staging(fs, final, Path(box, final.getName()))


def commit(spark: SparkSession, st: Staging) -> None:
    """Replace the final output with the staged one; the old output is kept until that worked."""
    Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path  # noqa: N806 - a JVM class
    old = None
    if st.fs.exists(st.final):
        old = Path(st.tmp.getParent(), "previous")
        if not st.fs.rename(st.final, old):
            raise EaasError(f"output: cannot move the previous output '{st.final_uri}' aside")
    if not st.fs.rename(st.tmp, st.final):
        if old is not None:
            st.fs.rename(old, st.final)
        raise EaasError(f"output: cannot rename the staged output to '{st.final_uri}'")


def discard(st: Staging) -> None:
    """Best effort: no staging folder (nor the replaced output) is left behind."""
    try:
        box = st.tmp.getParent()
        if st.fs.exists(box):
            st.fs.delete(box, True)
    except Exception:  # noqa: BLE001 - cleanup must not hide the job's own error
        pass


@dataclass(frozen=True)
class Counts:
    rows_in: int
    rows_ok: int
    rows_error: int


def _id_sums(df: DataFrame, cols: list[str], with_status: bool) -> dict[str, Any]:
    """One pass, no shuffle: row count, ok/error counts and two order-free checksums of the ids."""
    exprs = [F.count(F.lit(1)).alias("rows")]
    if with_status:
        exprs += [
            F.count(F.when(F.col("status") == "ok", 1)).alias("ok"),
            F.count(F.when(F.col("status") == "error", 1)).alias("error"),
        ]
    if cols:
        ids = [col(c) for c in cols]
        for name, h in (("xx", F.xxhash64(*ids)), ("mm", F.hash(*ids))):
            exprs.append(F.sum(h.cast("decimal(38,0)")).alias(name))
    return df.agg(*exprs).collect()[0].asDict()


def check(source: DataFrame, written: DataFrame, id_cols: list[str]) -> Counts:
    """Same number of rows and the same multiset of ids (by checksums) in input and output."""
    # map columns cannot be hashed by Spark; the row count still covers them
    cols = [c for c in id_cols if not isinstance(source.schema[c].dataType, MapType)]
    a = _id_sums(source, cols, with_status=False)
    b = _id_sums(written, cols, with_status=True)
    if a["rows"] != b["rows"] or b["ok"] + b["error"] != b["rows"]:
        raise BatchCheckFailed(
            f"output check failed: {a['rows']} rows in, {b['rows']} rows out "
            f"({b['ok']} ok, {b['error']} error); nothing was committed"
        )
    if cols and (a["xx"], a["mm"]) != (b["xx"], b["mm"]):
        raise BatchCheckFailed(
            "output check failed: the output's ids differ from the input's; nothing was committed"
        )
    return Counts(a["rows"], b["ok"], b["error"])
