"""Text explanations converge to the Shapley values of the word-masking game and report how far
they are (issue 16), through the registered explainer's pyfunc (a tiny BERT).

The game is the positive-class probability with the words outside a coalition masked exactly as
eaas masks them; its Shapley values are enumerated over every coalition of the text's words.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import mlflow
import numpy as np
import pandas as pd
import pytest

TEXT = "the acting was really great and the plot dull"  # 9 words
SHORT = "really great , dull plot"  # 5 players: 120 orders
GOOD = "the acting was really great and the story wonderful"  # far from the base value
SEEDS = 30


def _shapley(v, n: int) -> np.ndarray:
    """Shapley values from v(mask) over every coalition of n players."""
    masks = [np.array([j in c for j in range(n)]) for k in range(n + 1)
             for c in combinations(range(n), k)]  # fmt: skip
    vals = dict(zip((m.tobytes() for m in masks), v(np.array(masks)), strict=True))
    phi = np.zeros(n)
    for m in masks:
        s = int(m.sum())
        for i in np.flatnonzero(~m):
            with_i = m.copy()
            with_i[i] = True
            w = factorial(s) * factorial(n - s - 1) / factorial(n)
            phi[i] += w * (vals[with_i.tobytes()] - vals[m.tobytes()])
    return phi


@pytest.fixture(scope="module")
def explainer(built):
    from eaas.explain.pyfunc import load_explainer
    from eaas.explain.text.windows import make_layout

    model = mlflow.pyfunc.load_model(built["tiny-bert"])
    method = load_explainer(built["tiny-bert"]).method
    fn = method.fn
    lay = make_layout(TEXT, fn.tokenizer, fn.budget, "truncate")
    exact = _shapley(lambda m: fn.masked(lay, m)[:, 1], len(lay.spans))
    return model, method, exact


def _explain(model, text: str = TEXT, **params) -> pd.Series:
    return model.predict(pd.DataFrame({"text": [text]}), params=params).iloc[0]


def test_the_default_is_permutation_and_converges_to_the_enumerated_shapley_values(explainer):
    from eaas.explain.text.windows import make_layout

    model, method, exact = explainer
    assert method.name == "text-permutation"
    # sampled (tolerance 0: the whole budget, no shortcut): 1,000 orders of 9 words, within 5 of
    # its reported errors
    row = _explain(model, max_evals=19_000, tolerance=0.0, seed=3)
    got, err = np.array(row["values"][1]), np.array(row["approximation_error"][1])
    assert len(got) == len(exact) == 9
    assert np.abs(got - exact).max() < 5 * err.max() and err.max() < 1e-2
    assert row["additivity_error"] < 1e-6
    # a budget that covers every order: the Shapley values themselves
    lay = make_layout(SHORT, method.fn.tokenizer, method.fn.budget, "truncate")
    short_exact = _shapley(lambda m: method.fn.masked(lay, m)[:, 1], len(lay.spans))
    row = _explain(model, SHORT, max_evals=2_000, tolerance=0.01)
    assert np.abs(np.array(row["values"][1]) - short_exact).max() < 1e-6  # a float32 model
    assert np.max(row["approximation_error"]) == 0 and bool(row["tolerance_met"])


def test_text_kernel_is_exact_once_its_budget_covers_every_coalition(explainer):
    from eaas.explain.methods import make
    from eaas.explain.validation import Params

    _, method, exact = explainer
    kernel = make("text-kernel", method.source, None)
    out = kernel.explain([TEXT], Params(2**9, 0, "truncate", 0.05))
    assert np.abs(np.asarray(out.values[0])[1] - exact).max() < 1e-6  # a float32 model
    assert np.asarray(out.errors[0]).max() == 0 and out.met_rows() == [True]


@pytest.mark.parametrize("tolerance", [0.0, 1e-9])  # 1e-9: never met, stratified pairs
def test_the_reported_error_matches_the_spread_over_30_seeds(explainer, tolerance):
    model, _, _ = explainer
    rows = [_explain(model, max_evals=100, tolerance=tolerance, seed=s) for s in range(SEEDS)]
    vals = np.array([r["values"][1] for r in rows])
    errs = np.array([r["approximation_error"][1] for r in rows])
    spread = vals.std(axis=0, ddof=1)
    reported = np.sqrt(np.square(errs).mean(axis=0))
    ratio = reported / spread
    assert spread.min() > 0
    assert np.mean((ratio < 1.5) & (ratio > 1 / 1.5)) >= 0.9


def test_a_tolerance_stops_early_and_the_row_says_whether_it_was_met(explainer):
    model, _, _ = explainer
    loose = _explain(model, GOOD, max_evals=500, tolerance=0.2, seed=1)
    assert bool(loose["tolerance_met"]) is True
    err = np.array(loose["approximation_error"][1])
    gap = abs(loose["prediction"][1] - loose["base_values"][1])
    assert np.sqrt(np.square(err).sum()) <= 0.2 * gap
    capped = _explain(model, GOOD, max_evals=40, tolerance=1e-4, seed=1)
    assert bool(capped["tolerance_met"]) is False  # out of budget: it says so
    same = _explain(model, GOOD, max_evals=500, tolerance=0.2, seed=1)
    assert same["values"] == loose["values"]
