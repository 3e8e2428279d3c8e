"""The worker's per-row isolation and parsing, without Spark (fast): a real engine around a
fake model (2a + 2b, which crashes on a = 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from eaas.batch.worker import WorkerSpec, explain_record_batch, reason
from eaas.explain.errors import InvalidInput
from eaas.explain.inputs import TabularInputs, TextInputs
from tests.fixtures import SumModel, fake_engine

pytestmark = pytest.mark.fast
SPEC = WorkerSpec("models:/m/1", "", "", ("a", "b"), ("id",))


def _batch(a: list, ids=None) -> pa.RecordBatch:
    ids = ids if ids is not None else pa.array(range(len(a)), pa.int64())
    return pa.RecordBatch.from_pydict({"id": ids, "a": pa.array(a), "b": pa.array([5.0] * len(a))})


def test_a_failing_row_is_isolated_and_the_rest_of_the_batch_explained():
    model = SumModel()
    engine = fake_engine(model=model)
    calls = model.calls
    out = explain_record_batch(_batch([1.0, 13.0, 3.0, 4.0]), SPEC, engine)
    assert out.column("status").to_pylist() == ["ok", "error", "ok", "ok"]
    assert out.column("error").to_pylist() == [None, "ValueError: model crashed on a row",
                                               None, None]
    bg = engine.method.background.to_numpy().mean(axis=0)
    values = out.column("values").to_pylist()
    assert values[1] is None
    for row, a in ((0, 1.0), (2, 3.0), (3, 4.0)):  # an additive model: exact, 2 (x - E[x])
        assert np.allclose(values[row], [[2 * (a - bg[0]), 2 * (5.0 - bg[1])]], atol=1e-12)
    assert model.calls > calls  # the batch failed, then the rows one by one


def test_a_clean_batch_is_one_engine_call_and_keeps_id_types():
    ts = pa.array([1_700_000_000_000_000, None, 3], pa.timestamp("us", tz="UTC"))
    engine = fake_engine()
    out = explain_record_batch(_batch([1.0, 2.0, 2.5], ids=ts), SPEC, engine)
    assert out.schema.field("id").type == pa.timestamp("us", tz="UTC")
    assert out.column("id").equals(ts)
    assert out.schema.field("values").type == pa.list_(pa.list_(pa.float64()))
    assert out.schema.field("data").type == pa.list_(pa.float64())
    assert out.column("status").to_pylist() == ["ok"] * 3
    assert max(out.column("additivity_error").to_pylist()) < 1e-12


def test_numbers_written_as_text_are_parsed_per_cell():
    x = pd.DataFrame({"a": ["1.5", " 2 ", "abc", None, "nan", "1e3"], "b": [1.0] * 6})
    data, ok, errors = TabularInputs(["a", "b"], accepts_nan=True).split(x)
    # the core's rule names the field; the error sits on its row
    assert errors == [None, None, "a: not a number", None, None, None]
    assert ok == [0, 1, 3, 4, 5]
    assert data[:2, 0].tolist() == [1.5, 2.0] and data[4, 0] == 1000.0
    assert np.isnan(data[2:4, 0]).all()  # missing: fine when the model takes NaN
    _, _, strict = TabularInputs(["a", "b"]).split(x)
    assert strict[3] == "a: missing value and the model cannot take it"


def test_text_over_the_limit_is_an_error_row():
    texts, ok, errors = TextInputs(["text"]).split(
        pd.DataFrame({"text": ["short", "longer", None]}), max_chars=5
    )
    assert texts == ["short"] and ok == [0]
    assert errors[0] is None and errors[2] == "text: missing value"
    assert errors[1].startswith("text: longer than 5 characters")


def test_reason_is_the_core_message_or_the_first_line():
    assert reason(InvalidInput("f3: not a number", field="f3")) == "f3: not a number"
    assert reason(RuntimeError("x\ny")) == "RuntimeError: x"
    assert reason(KeyError()) == "KeyError"
    assert len(reason(ValueError("v" * 2000))) == 500
