"""The worker's array path (engine arrays -> Arrow, no Python object per number) against its
per-row path through the pyfunc: same columns, same values, and only for batches it can take."""

from __future__ import annotations

import math

import mlflow.pyfunc
import numpy as np
import pyarrow as pa
import pytest

from eaas.batch.arrow_out import explanation_columns
from eaas.batch.spark_types import arrow_fields
from eaas.batch.worker import WorkerSpec, explain_record_batch
from eaas.explain.schema import COLUMNS, Explanations
from tests.batch.conftest import tabular_rows

FEATURES = ("f0", "f1", "f2", "f3", "f4")


class Counting:
    """The loaded pyfunc, counting its predict calls; `hide_engine` forces the per-row path."""

    def __init__(self, model, hide_engine: bool = False) -> None:
        self.model, self.hide, self.calls = model, hide_engine, 0

    def predict(self, df, params=None):
        self.calls += 1
        return self.model.predict(df, params=params)

    def unwrap_python_model(self):
        if self.hide:
            raise AttributeError("not an eaas pyfunc")
        return self.model.unwrap_python_model()


def _batch(nan_row: int | None = None, inf_row: int | None = None) -> pa.RecordBatch:
    df = tabular_rows(12, seed=3)
    if nan_row is not None:
        df.loc[nan_row, "f2"] = math.nan
    if inf_row is not None:
        df.loc[inf_row, "f1"] = math.inf
    return pa.RecordBatch.from_pandas(df, preserve_index=False)


@pytest.fixture(scope="module")
def loaded(built) -> dict:
    return {name: mlflow.pyfunc.load_model(built[name])
            for name in ("tiny-xgb", "tiny-logistic", "tiny-mlp")}  # fmt: skip


@pytest.mark.parametrize(
    "name,params",
    [("tiny-xgb", {}), ("tiny-logistic", {}), ("tiny-mlp", {"max_evals": 40, "seed": 7})],
)
def test_array_path_equals_the_per_row_path(loaded, name, params):
    spec = WorkerSpec("models:/x/1", "", "", "tabular", FEATURES, ("id",), params)
    nan_row = 4 if name == "tiny-xgb" else None  # xgboost routes missing values
    batch = _batch(nan_row=nan_row)
    fast, slow = Counting(loaded[name]), Counting(loaded[name], hide_engine=True)
    got, want = explain_record_batch(batch, spec, fast), explain_record_batch(batch, spec, slow)
    assert fast.calls == 0 and slow.calls == 1  # the array path really ran, and in one call
    assert got.schema == want.schema
    for c in got.schema.names:  # NaN != NaN for `equals`: compare the flattened numbers
        a, b = got.column(c), want.column(c)
        while pa.types.is_list(a.type):
            a, b = a.flatten(), b.flatten()
        if pa.types.is_floating(a.type):
            np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
        else:
            assert a.equals(b), c
    assert got.column("status").to_pylist() == ["ok"] * batch.num_rows
    if nan_row is not None:
        assert math.isnan(got.column("data")[nan_row][2].as_py())


def test_a_batch_with_a_bad_row_takes_the_per_row_path(loaded):
    spec = WorkerSpec("models:/x/1", "", "", "tabular", FEATURES, ("id",))
    model = Counting(loaded["tiny-xgb"])
    clean = explain_record_batch(_batch(), spec, model)
    out = explain_record_batch(_batch(inf_row=2), spec, model)
    assert model.calls == 1  # the clean batch used none; the bad one went through predict
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
    assert explanation_columns(ragged, arrow_fields("text")[: len(COLUMNS)]) is None
