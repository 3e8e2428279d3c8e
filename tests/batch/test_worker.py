"""The worker's per-row isolation and parsing, without Spark (fast)."""

from __future__ import annotations

import pandas as pd

from eaas.batch.worker import WorkerSpec, explain_batch, explain_record_batch, precheck, reason
from eaas.explain.errors import InvalidInput
from eaas.explain.schema import COLUMNS

SPEC = WorkerSpec("models:/m/1", "", "", "tabular", ("a", "b"), ("id",))


class Doubler:
    """A stand-in explainer: one row out per row in; raises on a = 13 like a model bug would."""

    calls = 0

    def predict(self, df: pd.DataFrame, params=None) -> pd.DataFrame:
        self.calls += 1
        if (df["a"] == 13).any():
            raise ValueError("model crashed on a row\ndetails on a second line")
        rows = [{c: None for c in COLUMNS} | {"values": [[2 * a, 2 * b]]} for a, b in df.values]
        return pd.DataFrame(rows, columns=COLUMNS)


def test_a_failing_row_is_isolated_and_the_rest_of_the_batch_explained():
    pdf = pd.DataFrame({"id": [10, 11, 12, 13], "a": [1.0, 13.0, 3.0, 4.0], "b": [5.0] * 4})
    model = Doubler()
    out = explain_batch(pdf, SPEC, model)
    assert list(out.columns) == ["id"] + COLUMNS + ["status", "error"]
    assert out["status"].tolist() == ["ok", "error", "ok", "ok"]
    assert out["error"].tolist() == [None, "ValueError: model crashed on a row", None, None]
    assert out["values"].tolist() == [[[2.0, 10.0]], None, [[6.0, 10.0]], [[8.0, 10.0]]]
    assert model.calls == 1 + 4  # the batch, then row by row


def test_a_clean_batch_is_one_call():
    pdf = pd.DataFrame({"id": [1, 2], "a": [1.0, 2.0], "b": [3.0, 4.0]})
    model = Doubler()
    assert explain_batch(pdf, SPEC, model)["status"].tolist() == ["ok", "ok"]
    assert model.calls == 1


def test_numbers_written_as_text_are_parsed_per_cell():
    x = pd.DataFrame({"a": ["1.5", " 2 ", "abc", None, "nan", "1e3"], "b": [1.0] * 6})
    errors: list[str | None] = [None] * 6
    got = precheck(x, SPEC, errors, accepts_nan=True)
    # the core's rule names the field; the error sits on its row
    assert errors == [None, None, "a: not a number", None, None, None]
    assert got["a"].tolist()[:2] == [1.5, 2.0] and got["a"].tolist()[5] == 1000.0
    assert all(pd.isna(v) for v in got["a"].tolist()[3:5])  # missing: fine if the model takes NaN
    strict: list[str | None] = [None] * 6
    precheck(x, SPEC, strict)
    assert strict[3] == "a: missing value and the model cannot take it"


def test_text_over_the_limit_is_an_error_row():
    spec = WorkerSpec("models:/t/1", "", "", "text", ("text",), ("id",), max_text_chars=5)
    errors: list[str | None] = [None] * 3
    precheck(pd.DataFrame({"text": ["short", "longer", None]}), spec, errors)
    assert errors[0] is None and errors[2] == "text: missing value"
    assert errors[1].startswith("text: longer than 5 characters")


def test_reason_is_the_core_message_or_the_first_line():
    assert reason(InvalidInput("f3: not a number", field="f3")) == "f3: not a number"
    assert reason(RuntimeError("x\ny")) == "RuntimeError: x"
    assert reason(KeyError()) == "KeyError"
    assert len(reason(ValueError("v" * 2000))) == 500


def test_arrow_batch_keeps_id_columns_exactly_and_types_the_rest():
    import pyarrow as pa

    ts = pa.array([1_700_000_000_000_000, None, 3], pa.timestamp("us", tz="UTC"))
    batch = pa.RecordBatch.from_pydict(
        {"id": ts, "a": pa.array([1.0, 13.0, 2.0]), "b": pa.array([0.5, 0.5, 0.5])}
    )
    out = explain_record_batch(batch, SPEC, Doubler())
    assert out.schema.field("id").type == pa.timestamp("us", tz="UTC")
    assert out.column("id").equals(ts)
    assert out.schema.field("values").type == pa.list_(pa.list_(pa.float64()))
    assert out.schema.field("data").type == pa.list_(pa.float64())
    assert out.column("status").to_pylist() == ["ok", "error", "ok"]
    assert out.column("values").to_pylist() == [[[2.0, 1.0]], None, [[4.0, 1.0]]]
