"""The job in-process (joins the session fixture): CSV input, reruns, the output check."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from eaas.batch.job import JobSpec, run_job
from eaas.batch.output import BatchCheckFailed, check
from tests.batch.conftest import by_id, tabular_rows


def _csv(path: Path, n: int) -> Path:
    rows = tabular_rows(n).astype({"f3": object, "f1": object})
    rows.loc[2, "f3"] = "abc"  # one bad cell: Spark infers the whole column as string
    rows.loc[5, "f1"] = None  # a missing value xgboost can take
    rows.to_csv(path, index=False)
    return path


def test_csv_bad_cell_is_one_error_row_and_rerun_replaces(spark, built, tmp_path):
    out = tmp_path / "out"
    res = run_job(JobSpec("tiny-xgb@champion", str(_csv(tmp_path / "in.csv", 8)), str(out)))
    assert (res.rows_in, res.rows_ok, res.rows_error) == (8, 7, 1)
    assert res.output == out.resolve().as_uri().replace("file:///", "file:/")
    got = by_id(spark.read.parquet(str(out)).collect())
    assert got[2]["status"] == "error" and got[2]["error"] == "f3: not a number"
    assert got[2]["f3"] == "abc"  # the id columns are the input as read
    assert got[5]["status"] == "ok" and math.isnan(got[5]["data"][1])  # xgboost takes NaN
    assert got[3]["data"][3] == pytest.approx(float(got[3]["f3"]), rel=1e-15)

    small = tabular_rows(5, seed=9)
    small.to_parquet(tmp_path / "small.parquet", index=False)
    res = run_job(JobSpec("tiny-xgb", str(tmp_path / "small.parquet"), str(out), ["id"]))
    assert (res.rows_in, res.rows_ok, res.rows_error) == (5, 5, 0)
    again = spark.read.parquet(str(out)).toPandas()
    assert sorted(again["id"]) == [0, 1, 2, 3, 4] and list(again.columns)[:2] == [
        "id",
        "output_names",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out", "small.parquet"]
    part = pq.ParquetFile(next(out.glob("part-*.parquet"))).metadata.row_group(0)
    enc = {part.column(i).path_in_schema: part.column(i).encodings for i in range(part.num_columns)}
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert not dictionary & set(enc["values.list.element.list.element"])  # doubles: plain
    assert dictionary & set(enc["features.list.element"])  # repeated names: dictionary


def test_unknown_input_and_id_cols_are_one_line_errors(spark, built, tmp_path):
    from eaas.explain.errors import BadRequest

    with pytest.raises(BadRequest, match="input: .*PATH_NOT_FOUND|input: .*does not exist"):
        run_job(JobSpec("tiny-xgb", str(tmp_path / "nope.parquet"), str(tmp_path / "o")))
    tabular_rows(3).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(BadRequest, match="id-cols: no column 'key'"):
        run_job(JobSpec("tiny-xgb", str(tmp_path / "in.parquet"), str(tmp_path / "o"), ["key"]))
    assert not (tmp_path / "o").exists()


def test_check_refuses_lost_rows_and_changed_ids(spark):
    src = spark.createDataFrame(pd.DataFrame({"id": [1, 2, 3], "status": ["ok"] * 3}))
    assert check(src, src, ["id"]).rows_ok == 3
    with pytest.raises(BatchCheckFailed, match="3 rows in, 2 rows out"):
        check(src, src.where("id < 3"), ["id"])
    changed = spark.createDataFrame(pd.DataFrame({"id": [1, 2, 4], "status": ["ok"] * 3}))
    with pytest.raises(BatchCheckFailed, match="ids differ"):
        check(src, changed, ["id"])
    doubled = spark.createDataFrame(pd.DataFrame({"id": [1, 1, 3], "status": ["ok"] * 3}))
    with pytest.raises(BatchCheckFailed, match="ids differ"):
        check(src, doubled, ["id"])
