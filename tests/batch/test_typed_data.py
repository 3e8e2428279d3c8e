"""`data` of mixed-type explainers ("value": strings, categories, booleans beside numbers) in the
batch output: the Spark and Arrow types, both worker paths, and the Parquet round trip read back
through `from_typed`. Numbers-only and text explainers keep their types."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from eaas.batch import worker
from eaas.batch.arrow_out import explanation_columns, record_column
from eaas.batch.spark_types import arrow_fields, explanation_fields, output_schema
from eaas.batch.worker import WorkerSpec, explain_record_batch
from eaas.explain.engine import Checked
from eaas.explain.schema import COLUMNS, Explanations, from_typed
from eaas.explain.validation import Params

FEATURES = ["purpose", "income", "rate", "savings", "owner"]
# a string, an int, a float, a missing value and a boolean, as the model received them
ROWS = [["travel", 52000, 0.25, None, True], ["car", 18000, 1.5, 3.0, False]]
READ_BACK = [["travel", 52000.0, 0.25, None, 1.0], ["car", 18000.0, 1.5, 3.0, 0.0]]
VALUE = pa.struct([("number", pa.float64()), ("text", pa.string())])


def _fields(data_type: str = "value") -> list[pa.Field]:
    return arrow_fields(data_type)[: len(COLUMNS)]


def _explanations(data) -> Explanations:
    n, f = len(data), len(FEATURES)
    values = np.arange(n * 2 * f, dtype=float).reshape(n, 2, f) / 10
    return Explanations(
        output_names=["good", "bad"],
        prediction=values.sum(axis=2) + 0.5,
        base_values=np.full((n, 2), 0.5),
        values=values,
        features=[list(FEATURES)] * n,
        data=data,
    )


def _table(arrays: list[pa.Array], data_type: str = "value") -> pa.Table:
    return pa.Table.from_arrays(arrays, schema=pa.schema(_fields(data_type)))


def _read_back(table: pa.Table, tmp_path: Path) -> pd.DataFrame:
    pq.write_table(table, tmp_path / "out.parquet")
    return pd.read_parquet(tmp_path / "out.parquet")  # what reports and drift read


@pytest.mark.fast
def test_spark_types_of_data_per_data_type():
    value = StructType([StructField("number", DoubleType()), StructField("text", StringType())])
    by_type = {"double": DoubleType(), "string": StringType(), "value": value}
    for data_type, element in by_type.items():
        data = {f.name: f for f in explanation_fields(data_type)}["data"]
        assert data.dataType == ArrayType(element), data_type
    values = {f.name: f for f in explanation_fields("value")}["values"]
    assert values.dataType == ArrayType(ArrayType(DoubleType()))  # attributions stay numbers
    ids = StructType([StructField("id", StringType())])
    out = output_schema(ids, ["id"], "value")
    assert out.fieldNames() == ["id", *COLUMNS, "status", "error"]
    assert out["data"].dataType == ArrayType(value)


@pytest.mark.fast
def test_arrow_fields_of_data_per_data_type():
    data = {f.name: f.type for f in _fields("value")}["data"]
    assert pa.types.is_list(data) and data.value_type == VALUE
    assert {f.name: f.type for f in _fields("double")}["data"].value_type == pa.float64()
    assert {f.name: f.type for f in _fields("string")}["data"].value_type == pa.string()


@pytest.mark.fast
@pytest.mark.parametrize("form", ["ndarray", "lists"])
def test_mixed_values_round_trip_through_parquet(form, tmp_path):
    data = np.array(ROWS, dtype=object) if form == "ndarray" else [list(r) for r in ROWS]
    arrays = explanation_columns(_explanations(data), _fields())
    assert arrays is not None  # the array path takes rows of values, not only number arrays
    back = _read_back(_table(arrays), tmp_path)
    got = [from_typed(d) for d in back["data"]]
    assert got == READ_BACK
    assert isinstance(got[0][0], str) and isinstance(got[0][4], float)  # a bool as 1.0
    struct = back["data"].iloc[0][0]
    assert struct == {"number": None, "text": "travel"}  # the struct form, as Parquet holds it
    assert back["data"].iloc[0][3] == {"number": None, "text": None}  # missing: both null
    np.testing.assert_array_equal(np.stack(back["values"].iloc[1]), _explanations(data).values[1])


@pytest.mark.fast
def test_the_array_path_equals_the_per_row_path_for_values():
    exp = _explanations(np.array(ROWS, dtype=object))
    fast = explanation_columns(exp, _fields())
    slow = worker._from_records(exp, _fields())
    assert fast is not None
    for name, a, b in zip(COLUMNS, fast, slow, strict=True):
        assert a.type == b.type, name
        assert a.to_pylist() == b.to_pylist(), name


@pytest.mark.fast
def test_an_error_row_stays_null_and_numbers_only_data_is_unchanged():
    t = {f.name: f.type for f in _fields()}["data"]
    col = record_column([ROWS[0], None], t)
    assert col[1].as_py() is None and col.null_count == 1
    assert [from_typed(col[0].as_py())][0] == READ_BACK[0]
    numbers = {f.name: f.type for f in _fields("double")}["data"]
    plain = record_column([[1.0, math.nan], None], numbers)
    assert plain.type.value_type == pa.float64()
    assert plain[0].as_py()[0] == 1.0 and math.isnan(plain[0].as_py()[1])
    words = {f.name: f.type for f in _fields("string")}["data"]
    assert record_column([["a", "film"]], words).to_pylist() == [["a", "film"]]


@dataclass
class _Rule:
    data_type: str = "value"


@dataclass
class _MixedEngine:
    """The engine calls the worker makes, over rows of values: row `bad` fails the rule, and a
    row whose purpose is 'crash' fails the explanation (the per-row path isolates it)."""

    bad: set[int] = field(default_factory=set)
    inputs: _Rule = field(default_factory=_Rule)

    def check_rows(self, x: pd.DataFrame, params=None, max_chars=None, hint=""):
        rows = x[FEATURES].to_numpy(dtype=object)
        errors = [("income: not a number" if i in self.bad else None) for i in range(len(rows))]
        ok = [i for i, e in enumerate(errors) if e is None]
        return Checked(rows[ok], Params(10, 0, "truncate")), ok, errors

    def explain_arrays(self, checked: Checked) -> Explanations:
        if any(r[0] == "crash" for r in checked.data):
            raise ValueError("model crashed on a row")
        n, f = len(checked.data), len(FEATURES)
        values = np.ones((n, 2, f)) * np.array([-1.0, 1.0])[None, :, None]
        return Explanations(["good", "bad"], values.sum(axis=2), np.zeros((n, 2)), values,
                            [list(FEATURES)] * n, checked.data)  # fmt: skip

    def explain_records(self, checked: Checked) -> list[dict]:
        return self.explain_arrays(checked).to_records()


def _batch(purposes: list[str]) -> pa.RecordBatch:
    n = len(purposes)
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(range(n), pa.int64()),
            "purpose": pa.array(purposes),
            "income": pa.array([52000 + i for i in range(n)], pa.int64()),
            "rate": pa.array([0.25] * n),
            "savings": pa.array([None] + [3.0] * (n - 1), pa.float64()),
            "owner": pa.array([i % 2 == 0 for i in range(n)]),
        }
    )


@pytest.mark.fast
@pytest.mark.parametrize("bad", [set(), {1}])
def test_worker_writes_values_on_both_paths(bad, monkeypatch):
    spec = WorkerSpec("models:/m/1", "", "", tuple(FEATURES), ("id",))
    paths: list[str] = []
    for name in ("_whole", "_by_rows"):
        real = getattr(worker, name)
        monkeypatch.setattr(
            worker, name, lambda *a, real=real, name=name: paths.append(name) or real(*a)
        )
    out = explain_record_batch(_batch(["travel", "car", "crash", "home"]), spec, _MixedEngine(bad))
    assert paths == (["_whole", "_by_rows"] if not bad else ["_by_rows"])
    assert out.schema.field("data").type.value_type == VALUE
    status = out.column("status").to_pylist()
    assert status == ["ok", "error" if bad else "ok", "error", "ok"]
    assert out.column("error")[2].as_py() == "ValueError: model crashed on a row"
    data = [None if d is None else from_typed(d) for d in out.column("data").to_pylist()]
    assert data[0] == ["travel", 52000.0, 0.25, None, 1.0]
    assert data[3] == ["home", 52003.0, 0.25, 3.0, 0.0]
    assert data[2] is None and (data[1] is None) == bool(bad)


def test_spark_reads_and_writes_mixed_values(spark, tmp_path):
    """Arrow -> Spark (the declared output type) -> Parquet with the job's writer options."""
    from eaas.batch.job import NO_DICTIONARY

    n = 200  # values that repeat: Parquet would use a dictionary wherever it may
    arrays = explanation_columns(_explanations(np.array(ROWS * (n // 2), dtype=object)), _fields())
    ids = pa.array(range(n), pa.int64())
    schema = pa.schema([pa.field("id", pa.int64()), *_fields()])
    df = spark.createDataFrame(pa.Table.from_arrays([ids, *arrays], schema=schema)).coalesce(1)
    declared = output_schema(StructType([StructField("id", LongType())]), ["id"], "value")
    assert df.schema["data"].dataType == declared["data"].dataType
    writer = df.write.mode("overwrite")
    for column in NO_DICTIONARY:
        writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
    writer.parquet(str(tmp_path / "out"))
    back = spark.read.parquet(str(tmp_path / "out")).orderBy("id").limit(2).collect()
    assert [from_typed([v.asDict() for v in r["data"]]) for r in back] == READ_BACK
    read = pd.read_parquet(tmp_path / "out").sort_values("id")
    assert [from_typed(d) for d in read["data"]] == READ_BACK * (n // 2)
    part = next((tmp_path / "out").glob("part-*.parquet"))
    group = pq.ParquetFile(part).metadata.row_group(0)
    dictionary = {
        group.column(i).path_in_schema: any("DICT" in e for e in group.column(i).encodings)
        for i in range(group.num_columns)
    }
    # numbers rarely repeat (no dictionary, as for numbers-only data); strings keep theirs
    assert dictionary["features.list.element"] is True
    assert dictionary["data.list.element.number"] is False
    assert dictionary["data.list.element.text"] is True
