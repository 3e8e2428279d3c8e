"""Write the output where nobody sees it, check it, then make it visible in one rename.

Uses Hadoop's FileSystem through the JVM, so it works on any filesystem Spark writes to (local,
HDFS, S3A, GCS, ABFS). On object stores a rename is a copy: still all-or-nothing for readers of
the final path, just slower.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from eaas.batch.frame import col
from eaas.explain.errors import EaasError


class BatchCheckFailed(EaasError):
    """The written output does not match the input: nothing is committed."""

    status = 500
    code = "batch_check_failed"


@dataclass(frozen=True)
class Staging:
    """The final path, its staged replacement and where the previous output waits meanwhile.

    Paths are Hadoop paths on their filesystem `fs`; the staged output and the previous one live
    in the same `_eaas_tmp_<id>` folder next to the output (same filesystem: renames are cheap).
    """

    fs: Any
    final: Any
    tmp: Any
    previous: Any

    @property
    def tmp_uri(self) -> str:
        return str(self.tmp.toString())

    @property
    def final_uri(self) -> str:
        return str(self.final.toString())

    @property
    def box(self) -> Any:
        return self.tmp.getParent()


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
    return Staging(fs, final, Path(box, final.getName()), Path(box, "previous"))


def _ok(step: Callable[[], Any]) -> bool:
    """A filesystem call's verdict: False when it says so or raises (a JVM IOException)."""
    try:
        return bool(step())
    except Exception:  # noqa: BLE001 - any failure of the step is handled the same way
        return False


def commit(st: Staging) -> None:
    """Put the staged output in place; at every step either the old or the new output is whole.

    1. move the previous output aside (into the staging folder); 2. rename the staged output to
    the final path; 3. only then delete the previous output. If 2 fails, the previous output is
    moved back; if even that fails it is kept where it waits and the error says where.
    """
    fs = st.fs
    old = None
    if fs.exists(st.final):
        old = st.previous
        if not _ok(lambda: fs.rename(st.final, old)):
            # nothing moved (a failed rename leaves its source): the previous output is in place
            raise EaasError(f"output: cannot move the previous output '{st.final_uri}' aside")
    if not _ok(lambda: fs.rename(st.tmp, st.final)):
        if old is not None and not _restore(fs, old, st.final):
            raise EaasError(
                f"output: cannot rename the staged output to '{st.final_uri}', nor move the "
                f"previous output back: it is kept, whole, at '{old.toString()}'"
            )
        raise EaasError(f"output: cannot rename the staged output to '{st.final_uri}'")
    if old is not None:
        _ok(lambda: fs.delete(old, True))  # a leftover is removed by discard()


def _restore(fs: Any, old: Any, final: Any) -> bool:
    """Move the previous output back; a partial new one at `final` (object stores) goes first."""
    if fs.exists(final) and not _ok(lambda: fs.delete(final, True)):
        return False
    return _ok(lambda: fs.rename(old, final))


def discard(st: Staging) -> None:
    """Best effort: no staging folder is left behind, but a previous output that could not be
    moved back (the final path is empty) is never deleted."""
    try:
        fs = st.fs
        if fs.exists(st.previous) and not fs.exists(st.final):
            fs.delete(st.tmp, True)  # keep the box: it holds the only copy of the old output
        elif fs.exists(st.box):
            fs.delete(st.box, True)
    except Exception:  # noqa: BLE001 - cleanup must not hide the job's own error
        pass


@dataclass(frozen=True)
class Counts:
    rows_in: int
    rows_ok: int
    rows_error: int


def _id_sums(df: DataFrame, cols: list[str], with_status: bool, tag: str) -> DataFrame:
    """One row: row count, ok/error counts and two order-free checksums of the ids (no shuffle)."""
    exprs = [F.count(F.lit(1)).alias(f"{tag}rows")]
    if with_status:
        exprs += [
            F.count(F.when(F.col("status") == "ok", 1)).alias(f"{tag}ok"),
            F.count(F.when(F.col("status") == "error", 1)).alias(f"{tag}error"),
        ]
    if cols:
        ids = [col(c) for c in cols]
        for name, h in (("xx", F.xxhash64(*ids)), ("mm", F.hash(*ids))):
            exprs.append(F.sum(h.cast("decimal(38,0)")).alias(f"{tag}{name}"))
    return df.agg(*exprs)


def check(source: DataFrame, written: DataFrame, id_cols: list[str]) -> Counts:
    """Same number of rows and the same multiset of ids (by checksums) in input and output.

    Both sides are aggregated in one Spark job (two one-row results joined): one pass over the
    input's id columns and one over the output's ids and status, no shuffle of rows.
    """
    # map columns cannot be hashed by Spark; the row count still covers them
    cols = [c for c in id_cols if not isinstance(source.schema[c].dataType, MapType)]
    both = _id_sums(source, cols, False, "a_").crossJoin(_id_sums(written, cols, True, "b_"))
    got = both.collect()[0].asDict()
    a = {k[2:]: v for k, v in got.items() if k.startswith("a_")}
    b = {k[2:]: v for k, v in got.items() if k.startswith("b_")}
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
