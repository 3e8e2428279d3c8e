"""Bar labels of one explanation: `feature = value` for tabular rows (any value type, either
form of `data`), the word itself for text."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eaas.explain import plots
from eaas.explain.plots import format_value
from eaas.explain.schema import to_typed

pytestmark = pytest.mark.fast

FEATURES = ["purpose", "income", "owner", "savings", "note", "rate"]
DATA = ["travel", 52000, True, None, "a very long free-text comment about it", 0.123456]
LABELS = ["purpose = travel", "income = 52000", "owner = True", "savings = missing",
          "note = a very long free-text co…", "rate = 0.1235"]  # fmt: skip


def _row(data, features=FEATURES) -> pd.Series:
    k = len(features)
    values = np.linspace(-1, 1, k)
    return pd.Series({"output_names": ["good", "bad"], "prediction": [-0.2, 0.2],
                      "base_values": [0.0, 0.0], "features": list(features), "data": data,
                      "values": [list(-values), list(values)]})  # fmt: skip


@pytest.mark.parametrize(
    "value,text",
    [(52000, "52000"), (52000.0, "52000"), (1234567.8, "1234568"), (0.000123, "0.000123"),
     (2.5, "2.5"), (-52000.5, "-52000"), (1e15, "1e+15"), (np.int64(7), "7"),
     (None, "missing"), (math.nan, "missing"), (np.float64("nan"), "missing"),
     (pd.NA, "missing"), (False, "False"), ("travel", "travel")],
)  # fmt: skip
def test_format_value(value, text):
    assert format_value(value) == text


def test_long_strings_are_cut_only_when_asked():
    s = "x" * 40
    assert format_value(s) == s and format_value(s, 25) == "x" * 24 + "…"
    assert len(format_value(s, 25)) == 25


def test_tabular_labels_in_either_form_of_data():
    assert plots._labels(_row(DATA)) == LABELS
    typed = plots._labels(_row(to_typed(DATA)))  # as batch output holds it: a bool is 1.0
    assert typed == [*LABELS[:2], "owner = 1", *LABELS[3:]]


def test_text_labels_are_the_words():
    words = ["a", "gripping", "film"]
    assert plots._labels(_row(words, words)) == ["'a'", "'gripping'", "'film'"]


def test_instance_bar_shows_the_labels():
    fig = plots.instance_bar(_row(DATA), title="loan v1")
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    plots.close(fig)
    assert sorted(shown) == sorted(LABELS)
