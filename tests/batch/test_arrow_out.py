"""The worker's array path (engine arrays -> Arrow, no Python object per number) against its
per-row path (records): same columns, same values, and only for batches it can take."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from eaas.batch import worker
from eaas.batch.arrow_out import explanation_columns
from eaas.batch.spark_types import arrow_fields
from eaas.batch.worker import WorkerSpec, explain_record_batch
from eaas.explain.pyfunc import load_explainer
from eaas.explain.schema import COLUMNS, Explanations
from tests.batch.conftest import tabular_rows

FEATURES = ("f0", "f1", "f2", "f3", "f4")


def _batch(nan_row: int | None = None, inf_row: int | None = None) -> pa.RecordBatch:
    df = tabular_rows(12, seed=3)
    if nan_row is not None:
        df.loc[nan_row, "f2"] = math.nan
    if inf_row is not None:
        df.loc[inf_row, "f1"] = math.inf
    return pa.RecordBatch.from_pandas(df, preserve_index=False)


@pytest.fixture(scope="module")
def loaded(built) -> dict:
    return {name: load_explainer(built[name])
            for name in ("tiny-xgb", "tiny-logistic", "tiny-mlp")}  # fmt: skip


def _per_row(engine, batch: pa.RecordBatch, params: dict) -> list[pa.Array]:
    """The worker's per-row path on the same batch (what a batch with a bad row takes)."""
    checked, ok, errors = engine.check_rows(batch.select(list(FEATURES)).to_pandas(), params)
    fields = arrow_fields(engine.inputs.data_type)[: len(COLUMNS)]
    return worker._by_rows(engine, checked, ok, errors, fields)


@pytest.mark.parametrize(
    "name,params",
    [("tiny-xgb", {}), ("tiny-logistic", {}), ("tiny-mlp", {"max_evals": 40, "seed": 7})],
)
def test_array_path_equals_the_per_row_path(loaded, name, params):
    spec = WorkerSpec("models:/x/1", "", "", FEATURES, ("id",), params)
    nan_row = 4 if name == "tiny-xgb" else None  # xgboost routes missing values
    batch = _batch(nan_row=nan_row)
    engine = loaded[name]
    got = explain_record_batch(batch, spec, engine)
    want = _per_row(engine, batch, params)
    for n, c in enumerate(COLUMNS):  # NaN != NaN for `equals`: compare the flattened numbers
        a, b = got.column(c), want[n]
        assert a.type == b.type, c
        while pa.types.is_list(a.type):
            a, b = a.flatten(), b.flatten()
        if pa.types.is_floating(a.type):
            np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
        else:
            assert a.equals(b), c
    assert got.column("status").to_pylist() == ["ok"] * batch.num_rows
    if nan_row is not None:
        assert math.isnan(got.column("data")[nan_row][2].as_py())


def test_a_batch_with_a_bad_row_takes_the_per_row_path(loaded, monkeypatch):
    spec = WorkerSpec("models:/x/1", "", "", FEATURES, ("id",))
    engine = loaded["tiny-xgb"]
    paths: list[str] = []
    for name in ("_whole", "_by_rows"):
        real = getattr(worker, name)
        monkeypatch.setattr(worker, name,
                            lambda *a, real=real, name=name: paths.append(name) or real(*a))
    clean = explain_record_batch(_batch(), spec, engine)
    out = explain_record_batch(_batch(inf_row=2), spec, engine)
    assert paths == ["_whole", "_by_rows"]  # the clean batch in one array call, not the other
    assert out.column("status").to_pylist() == ["ok", "ok", "error"] + ["ok"] * 9
    assert out.column("error")[2].as_py() == "f1: infinite value"
    keep = [i for i in range(12) if i != 2]
    assert out.column("values").take(keep).equals(clean.column("values").take(keep))
    assert out.column("values")[2].as_py() is None


def test_rows_of_different_shapes_are_left_to_the_per_row_path():
    ragged = Explanations(
        output_names=["neg", "pos"],
        prediction=np.zeros((2, 2)),
        base_values=np.zeros((2, 2)),
        values=[np.zeros((2, 3)), np.zeros((2, 4))],
        features=[["a", "b", "c"], ["a", "b", "c", "d"]],
        data=[["a", "b", "c"], ["a", "b", "c", "d"]],
    )
    assert explanation_columns(ragged, arrow_fields("string")[: len(COLUMNS)]) is None
