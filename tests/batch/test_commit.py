"""Committing batch output: a failure at any step leaves the old or the new output whole.

The filesystem is Hadoop's real local one; a thin wrapper makes one chosen call fail (returns
False, as Hadoop does, or raises, as an object store's IOException does).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import pytest

from eaas.batch import output
from eaas.explain.errors import EaasError


class FailingFs:
    """Hadoop FileSystem calls pass through, except the `nth` call of `op` (1-based), which fails
    (and so does every later one when `sticky`)."""

    def __init__(self, fs: Any, op: str, nth: int, raises: bool, sticky: bool = False) -> None:
        self.fs, self.op, self.nth, self.raises, self.sticky = fs, op, nth, raises, sticky
        self.calls = 0

    def _fail(self) -> bool:
        self.calls += 1
        return self.calls == self.nth or (self.sticky and self.calls > self.nth)

    def rename(self, a: Any, b: Any) -> bool:
        return self._maybe("rename", lambda: self.fs.rename(a, b))

    def delete(self, p: Any, recursive: bool) -> bool:
        return self._maybe("delete", lambda: self.fs.delete(p, recursive))

    def _maybe(self, op: str, call: Any) -> bool:
        if op == self.op and self._fail():
            if self.raises:
                raise OSError(f"injected {op} failure")
            return False
        return call()

    def exists(self, p: Any) -> bool:
        return self.fs.exists(p)


def _write(spark, path: str, ids: list[int]) -> None:
    spark.createDataFrame(pd.DataFrame({"id": ids})).coalesce(1).write.mode(
        "overwrite"
    ).parquet(path)


def _ids(spark, path: str) -> list[int]:
    return sorted(r["id"] for r in spark.read.parquet(path).collect())


OLD, NEW = [1, 2, 3], [7, 8, 9, 10]


@pytest.mark.parametrize("raises", [False, True], ids=["returns-false", "raises"])
@pytest.mark.parametrize(
    ("op", "nth", "sticky", "after"),
    [
        ("rename", 1, False, OLD),  # moving the old output aside
        ("rename", 2, False, OLD),  # renaming the staged output into place -> old moved back
        ("delete", 1, False, NEW),  # deleting the old output once the new one is in place
    ],
    ids=["aside", "install", "cleanup"],
)
def test_a_failing_step_leaves_old_or_new_whole(spark, tmp_path, op, nth, sticky, after, raises):
    final = str(tmp_path / "out")
    _write(spark, final, OLD)
    st = output.stage(spark, final)
    _write(spark, st.tmp_uri, NEW)
    faulty = dataclasses.replace(st, fs=FailingFs(st.fs, op, nth, raises, sticky))
    if after is OLD:
        with pytest.raises(EaasError, match="output: cannot"):
            output.commit(faulty)
    else:
        output.commit(faulty)
    output.discard(st)
    assert _ids(spark, final) == after
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


@pytest.mark.parametrize("raises", [False, True], ids=["returns-false", "raises"])
def test_install_and_restore_both_failing_keep_the_old_output(spark, tmp_path, raises):
    """Rename 2 (install) and 3 (move back) fail: the old output stays whole where it waits."""
    final = str(tmp_path / "out")
    _write(spark, final, OLD)
    st = output.stage(spark, final)
    _write(spark, st.tmp_uri, NEW)
    faulty = dataclasses.replace(st, fs=FailingFs(st.fs, "rename", 2, raises, sticky=True))
    with pytest.raises(EaasError, match="kept, whole, at '.*_eaas_tmp_.*/previous'") as err:
        output.commit(faulty)
    output.discard(st)
    kept = err.value.message.split("at '")[-1].rstrip("'")
    assert _ids(spark, kept) == OLD
    assert not (tmp_path / "out").exists()


def test_commit_without_previous_output_and_rerun(spark, tmp_path):
    final = str(tmp_path / "out")
    for ids in (OLD, NEW):
        st = output.stage(spark, final)
        _write(spark, st.tmp_uri, ids)
        output.commit(st)
        output.discard(st)
        assert _ids(spark, final) == ids
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
