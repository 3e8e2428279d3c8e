"""docs/development.md's worked example, run: one module (example_method.py) plus one registry
line makes a method that the engine, the input rule and the schema take as they are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eaas.explain import methods
from eaas.explain.methods import Entry
from tests.fixtures import SumModel, fake_engine, interventional_value, shapley_by_enumeration

pytestmark = pytest.mark.fast


class Interacting(SumModel):
    """a + 2b + 3 a c: an interaction, so Shapley values are not just w (x - mean)."""

    def __init__(self) -> None:
        super().__init__({"a": 1.0, "b": 2.0, "c": 0.0})

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return df["a"] + 2 * df["b"] + 3 * df["a"] * df["c"]


@pytest.fixture()
def registered(monkeypatch):
    # the one registry line, as docs/development.md shows it
    monkeypatch.setitem(methods.REGISTRY, "enumeration",
                        Entry("tests.explain.example_method:EnumerationMethod"))


def test_the_new_method_is_found_and_explains_exactly(registered):
    model = Interacting()
    engine = fake_engine("enumeration", model=model)
    assert engine.exact and engine.reentrant and engine.config.method == "enumeration"
    x = pd.DataFrame({"a": [0.5, -1.0], "b": [1.0, 2.0], "c": [2.0, -0.5]})
    out = engine.explain(x)
    bg = engine.method.background.to_numpy()
    for i, row in enumerate(x.to_numpy()):
        v = interventional_value(lambda d: model.predict(pd.DataFrame(d, columns=list("abc"))),
                                 row, bg)
        oracle = shapley_by_enumeration(v, 3)
        assert np.abs(np.array(out["values"][i][0]) - oracle).max() < 1e-12
    assert out["additivity_error"].max() < 1e-12


def test_the_new_method_gets_the_engines_rules(registered):
    from eaas.explain.errors import InvalidInput

    engine = fake_engine("enumeration", model=Interacting())
    with pytest.raises(InvalidInput, match=r"instances\[0\]\.c: missing feature"):
        engine.check([{"a": 1.0, "b": 2.0}])


def test_without_the_registry_line_it_is_unknown():
    from eaas.explain.errors import BadRequest

    with pytest.raises(BadRequest, match="unknown 'enumeration'"):
        fake_engine("enumeration", model=Interacting())
