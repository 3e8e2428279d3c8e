"""The one input rule's vector test judges exactly as its per-cell rule does."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eaas.explain.validation import cell_reason, check_tabular, tabular_row_errors

pytestmark = pytest.mark.fast

FEATURES = ["a", "b", "c"]
EDGES = [0.0, -1.5, 3.3e38, 3.5e38, -1e39, math.inf, -math.inf, math.nan, 1e-300, 7]


def _per_cell(df: pd.DataFrame, accepts_nan: bool) -> list[str | None]:
    """The rule applied cell by cell, first bad field per row: what the vector test replaces."""
    out = []
    for row in df[FEATURES].to_numpy(dtype=object):
        why = next(((f, r) for f, v in zip(FEATURES, row, strict=True)
                    if (r := cell_reason(v, accepts_nan))), None)  # fmt: skip
        out.append(None if why is None else f"{why[0]}: {why[1]}")
    return out


@pytest.mark.parametrize("accepts_nan", [False, True])
def test_vector_test_matches_the_per_cell_rule(accepts_nan):
    rng = np.random.default_rng(0)
    cells = rng.choice(np.array(EDGES, dtype=float), size=(200, 3))
    df = pd.DataFrame(cells, columns=FEATURES)
    got = [None if e is None else e.row_message for e in tabular_row_errors(df, FEATURES,
                                                                           accepts_nan)]
    want = _per_cell(df, accepts_nan)
    assert got == want
    assert any(w is None for w in want) and any(w is not None for w in want)  # both kinds seen


def test_mixed_and_reordered_columns_are_judged_the_same_way():
    df = pd.DataFrame({"c": [1.0, 2.0, 3.0], "a": ["x", 1, None], "b": [True, 2.0, 3.0]},
                      dtype=object)  # fmt: skip
    got = [None if e is None else e.row_message for e in tabular_row_errors(df, FEATURES)]
    assert got == ["a: not a number", None, "a: missing value and the model cannot take it"]
    ints = pd.DataFrame({"b": [1, 2], "c": [3, 4], "a": pd.array([5, None], dtype="Int64")})
    assert [e is None for e in tabular_row_errors(ints, FEATURES, accepts_nan=True)] == [True] * 2
    with pytest.raises(Exception, match=r"instances\[1\]\.a: missing value"):
        check_tabular(ints, FEATURES)
    arr = check_tabular(ints.iloc[:1], FEATURES)
    assert arr.tolist() == [[5.0, 1.0, 3.0]]  # model order, whatever the frame's order
