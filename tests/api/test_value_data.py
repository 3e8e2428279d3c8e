"""Mixed-type `data` (strings, booleans, integers, floats, null) through the REST response
model, the JSON shaping, the explanation page, `eaas explanations export` and `verify`: every
value keeps its type; numbers-only and text data are unchanged."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from eaas.api.render import null_missing
from eaas.api.routes.audit_pages import _inputs_table
from eaas.api.schemas import Explanation
from eaas.explain.errors import BadRequest
from eaas.explain.schema import from_typed

pytestmark = pytest.mark.fast

FEATURES = ["purpose", "income", "rate", "owner", "savings", "code"]
DATA = ["travel", 52000, 0.25, True, None, "1.5"]  # "1.5": a string, not a number
INSTANCE = dict(zip(FEATURES, DATA, strict=True))


def _explanation(data: list[Any] = DATA, features: list[str] = FEATURES) -> dict[str, Any]:
    k = len(features)
    return {"output_names": ["good", "bad"], "prediction": [-0.1, 0.1], "base_values": [0.0, 0.0],
            "values": [[-0.1 / k] * k, [0.1 / k] * k], "features": list(features),
            "data": list(data), "additivity_error": 0.0, "approximation_error": None,
            "tolerance_met": False, "truncated": False}  # fmt: skip


def test_the_response_model_keeps_each_value_type():
    got = Explanation.model_validate(_explanation()).data
    assert got == DATA
    assert [type(v) for v in got] == [str, int, float, bool, type(None), str]
    again = Explanation.model_validate_json(Explanation(**_explanation()).model_dump_json())
    assert again.data == DATA and isinstance(again.data[3], bool) and again.data[5] == "1.5"
    numbers = Explanation.model_validate(_explanation([1.0, None, 2.5, 0.0, 3.0, 4.0])).data
    assert numbers == [1.0, None, 2.5, 0.0, 3.0, 4.0] and isinstance(numbers[0], float)
    words = ["a", "dull", "and", "boring", "plot", "."]
    assert Explanation.model_validate(_explanation(words, words)).data == words


def test_null_missing_keeps_types_and_nulls_nan():
    rec = _explanation([np.str_("travel"), np.int64(52000), math.nan, np.bool_(True), None,
                        pd.NA])  # fmt: skip
    got = null_missing(rec)["data"]
    assert got == ["travel", 52000, None, True, None, None]
    assert [type(v) for v in got[:4]] == [str, int, type(None), bool]


def test_the_explanation_page_shows_values_as_text_escaped():
    exp = _explanation(["<script>x</script>", 52000, 0.25, True, None, "1.5"])
    html = _inputs_table({"explanation": exp, "input_stored": True, "input": {}}, 1)
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "<td>52000</td>" in html and "<td>true</td>" in html and ">missing<" in html
    assert "<td>1.5</td>" in html


def test_export_data_column_per_kind(tmp_path):
    from eaas.explanations import typed_data

    numbers = [[1.0, None], [2.0, 3.0]]
    words = [["a", "film"], ["dull"]]
    assert typed_data(numbers) == numbers and typed_data(words) == words
    mixed = typed_data([DATA, None, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    assert mixed[1] is None and mixed[0][0] == {"number": None, "text": "travel"}
    pd.DataFrame({"data": pd.Series(mixed, dtype=object)}).to_parquet(tmp_path / "d.parquet")
    back = pd.read_parquet(tmp_path / "d.parquet")["data"]
    assert from_typed(back.iloc[0]) == ["travel", 52000.0, 0.25, 1.0, None, "1.5"]
    assert back.iloc[1] is None and from_typed(back.iloc[2]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def _store(tmp_path, store_inputs: bool, exp: dict[str, Any], instance: Any = INSTANCE):
    from eaas.api.audit.store import ExplanationStore, Pending, new_id

    url = f"sqlite:///{tmp_path / 'e.db'}"
    store = ExplanationStore(url, store_inputs=store_inputs)
    ms = int(time.time() * 1000)
    p = Pending(new_id(ms), ms, "r", {"name": "loan", "version": "1"},
                {"name": "loan-explainer", "version": "1", "method": "tree"},
                {"max_evals": 1, "seed": 0}, instance, exp)  # fmt: skip
    store.write([p])
    store.engine.dispose()
    return url, p.id


def test_export_writes_mixed_data_that_reads_back(tmp_path):
    from eaas.explanations import export

    url, id_ = _store(tmp_path, True, _explanation())
    assert export("loan", tmp_path / "out.parquet", url=url) == 1
    row = pd.read_parquet(tmp_path / "out.parquet").iloc[0]
    assert row["id"] == id_ and list(row["features"]) == FEATURES
    assert from_typed(row["data"]) == ["travel", 52000.0, 0.25, 1.0, None, "1.5"]


class _Engine:
    """What `recompute` calls, recording the instance it was given."""

    def __init__(self, exp: dict[str, Any]) -> None:
        self.exp, self.seen = exp, None

    def check(self, instances: list[Any], params: dict[str, Any]) -> list[Any]:
        self.seen = instances[0]
        return instances

    def explain_records(self, checked: list[Any]) -> list[dict[str, Any]]:
        return [dict(self.exp)]


@pytest.mark.parametrize("stored", [True, False])
def test_verify_replays_the_input_with_its_types(stored, tmp_path, monkeypatch):
    import eaas.explanations as ex

    exp = _explanation()
    engine = _Engine(exp)
    monkeypatch.setattr(ex, "load_engine", lambda uri: engine)
    url, id_ = _store(tmp_path, stored, exp)
    verdict = ex.verify(id_, url=url)
    assert verdict.identical and verdict.rebuilt is (not stored)
    assert engine.seen == INSTANCE  # rebuilt from features + data when not stored
    assert [type(engine.seen[f]) for f in FEATURES] == [str, int, float, bool, type(None), str]


def test_verify_refuses_what_the_explanation_cannot_rebuild(tmp_path, monkeypatch):
    import eaas.explanations as ex

    monkeypatch.setattr(ex, "load_engine", lambda uri: _Engine(_explanation()))
    other = {**INSTANCE, "income": 52000.5}  # the explanation's values are not this input
    url, id_ = _store(tmp_path, False, _explanation(), other)
    with pytest.raises(BadRequest, match="cannot replay"):
        ex.verify(id_, url=url)
    words = ["a", "dull", "plot"]
    (tmp_path / "text").mkdir()
    url, id_ = _store(tmp_path / "text", False, _explanation(words, words), "a dull plot")
    with pytest.raises(BadRequest, match="cannot replay"):
        ex.verify(id_, url=url)
