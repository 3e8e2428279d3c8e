"""Mixed-type tabular models (a sklearn pipeline over strings, a category, booleans, integers
and floats): attributions per input column, proven against Shapley values enumerated over the
input columns; the input rule judges each column by its type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import OneHotEncoder

from eaas.explain.engine import Engine
from eaas.explain.errors import InvalidInput, UnsupportedModel
from eaas.explain.source import SourceModel
from tests.fixtures import (
    interventional_value,
    loan_data,
    loan_pipeline,
    shapley_by_enumeration,
)

pytestmark = pytest.mark.fast

X, Y = loan_data(300)
FEATURES = list(X.columns)
BG = X.head(12)  # small: the enumeration below evaluates 2^7 coalitions x background rows


def _source(model, classifier: bool = True) -> SourceModel:
    names = [str(c) for c in model.classes_] if classifier else ["prediction"]
    return SourceModel("sklearn", model, "tabular", FEATURES, names, classifier, X.head(20))


def _instances() -> list[dict]:
    rows = X.iloc[[3, 8, 21]].astype(object).to_dict("records")
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows]
    rows[1]["purpose"] = "wedding"  # never seen: the encoder ignores it, so it is explained
    rows[2]["region"] = None  # missing: the encoder takes it as an unknown value
    return rows


def _enumerated(f, row: dict) -> np.ndarray:
    x = np.array([row[c] for c in FEATURES], dtype=object)
    bg = BG[FEATURES].to_numpy(dtype=object)
    return shapley_by_enumeration(interventional_value(f, x, bg), len(FEATURES))


def _frame(rows: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=FEATURES)
    return df.astype({"owner": bool, "age": int, "income": float, "debt": float})


@pytest.fixture(scope="module")
def logistic():
    return loan_pipeline(LogisticRegression(max_iter=2000)).fit(X, Y)


def test_linear_pipeline_is_exact_over_input_columns(logistic):
    """One value per input column (never `cat__purpose_travel`), equal to the Shapley values of
    the interventional game over the input columns, in log-odds, to 1e-9."""
    engine = Engine(_source(logistic), "linear", BG, {"max_evals": 500, "seed": 0})
    assert engine.config.output_space == "log_odds"
    recs = engine.explain_records(engine.check(_instances()))
    f = lambda rows: logistic.decision_function(_frame(rows))  # noqa: E731
    for rec, row in zip(recs, _instances(), strict=True):
        assert rec["features"] == FEATURES
        assert rec["data"] == [row[c] for c in FEATURES]  # as the model received them
        np.testing.assert_allclose(rec["values"][1], _enumerated(f, row), atol=1e-9)
        np.testing.assert_allclose(rec["values"][0], -_enumerated(f, row), atol=1e-9)
        assert rec["additivity_error"] < 1e-9


def test_linear_pipeline_regressor():
    model = loan_pipeline(Ridge()).fit(X, X["income"] / 1000 + Y)
    engine = Engine(_source(model, classifier=False), "linear", BG,
                    {"max_evals": 500, "seed": 0})
    rec = engine.explain_records(engine.check(_instances()[:1]))[0]
    f = lambda rows: model.predict(_frame(rows))  # noqa: E731
    np.testing.assert_allclose(rec["values"][0], _enumerated(f, _instances()[0]), atol=1e-9)


@pytest.mark.parametrize("method", ["kernel", "permutation"])
def test_sampled_methods_mask_in_the_input_columns(logistic, method):
    """Kernel with the budget for every coalition is exact; permutation converges."""
    engine = Engine(_source(logistic), method, BG, {"max_evals": 4000, "seed": 0})
    recs = engine.explain_records(engine.check(_instances()))
    f = lambda rows: logistic.predict_proba(_frame(rows))[:, 1]  # noqa: E731
    tol = 1e-9 if method == "kernel" else 2e-2
    for rec, row in zip(recs, _instances(), strict=True):
        np.testing.assert_allclose(rec["values"][1], _enumerated(f, row), atol=tol)


def test_same_seed_same_numbers_whatever_the_batch(logistic):
    engine = Engine(_source(logistic), "permutation", BG, {"max_evals": 300, "seed": 3})
    rows = _instances()
    alone = engine.explain_records(engine.check(rows[1:2]))[0]
    batch = engine.explain_records(engine.check(rows))[1]
    assert alone["values"] == batch["values"]


def test_tree_pipeline_is_exact_over_input_columns():
    """A forest behind one-hot encoding and scaling: `tree`, one value per input column, equal
    to the path-dependent Shapley values enumerated over the input columns (each one-hot
    column's splits grouped under its column), not the sum of the one-hot columns' values."""
    from tests.explain.test_categorical_trees import _brute, _sk_step

    forest = loan_pipeline(RandomForestClassifier(4, max_depth=5, random_state=0)).fit(X, Y)
    engine = Engine(_source(forest), "tree", None, {"max_evals": 500, "seed": 0})
    assert _source(forest).family == "tree" and engine.config.output_space == "probability"
    rows = _instances()
    recs = engine.explain_records(engine.check(rows))
    pre, trees = forest[:-1], forest[-1].estimators_
    players = np.repeat(np.arange(7), [5, 4, 4, 1, 1, 1, 1])  # one-hot widths, then numbers
    players = players[[*range(13), 14, 15, 16, 13]]  # the passthrough `owner` comes last
    leaf = lambda v: v[0, 1] / v[0].sum() / len(trees)  # noqa: E731 - class 1, averaged
    for rec, row in zip(recs, rows, strict=True):
        z = np.asarray(pre.transform(pd.DataFrame([row])), dtype=float)[0]
        exact = _brute([(_sk_step(t.tree_, z, players, leaf), 0) for t in trees], 7)
        np.testing.assert_allclose(rec["values"][1], exact, atol=1e-9)
        assert rec["additivity_error"] < 1e-9
    proba = forest.predict_proba(pd.DataFrame(rows))
    np.testing.assert_allclose([r["prediction"] for r in recs], proba, atol=1e-12)


def test_a_step_that_mixes_columns_makes_a_black_box():
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline

    forest = loan_pipeline(RandomForestClassifier(5, max_depth=3, random_state=0)).fit(X, Y)
    mixed = Pipeline([("pre", forest.steps[0][1]), ("pca", PCA(3)),
                      ("m", LogisticRegression())]).fit(X, Y)
    assert _source(mixed).family == "other"
    with pytest.raises(UnsupportedModel, match="needs a linear model"):
        Engine(_source(mixed), "linear", BG, {"max_evals": 500, "seed": 0})


# --- the input rule, column by column ----------------------------------------------------------


@pytest.fixture(scope="module")
def strict_engine():
    """An encoder that refuses unseen values; the rule must know it before the model fails."""
    model = loan_pipeline(LogisticRegression(max_iter=2000))
    model.set_params(pre__cat=OneHotEncoder(handle_unknown="error"))
    model.fit(X, Y)
    return Engine(_source(model), "permutation", X.head(40), {"max_evals": 300, "seed": 0})


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("age", "forty", "instances[0].age: not a number"),
        ("age", 40.5, "instances[0].age: not an integer"),
        ("income", float("inf"), "instances[0].income: infinite value"),
        ("purpose", 7, "instances[0].purpose: not a string"),
        ("owner", "yes", "instances[0].owner: not a boolean (true or false)"),
        ("purpose", "wedding", "instances[0].purpose: a value the model has not seen"),
        ("debt", None, "instances[0].debt: missing value and the model cannot take it"),
    ],
)
def test_each_column_is_judged_by_its_type(strict_engine, column, value, message):
    row = _instances()[0] | {column: value}
    with pytest.raises(InvalidInput) as err:
        strict_engine.check([row])
    assert err.value.message.startswith(message)
    assert str(value) not in err.value.message.removeprefix(message) or value is None


def test_probed_column_facts(strict_engine):
    cols = {c["name"]: c for c in strict_engine.config.columns}
    assert cols["purpose"]["type"] == "string" and not cols["purpose"]["unseen"]
    assert cols["grade"]["type"] == "category" and cols["grade"]["categories"] == list("ABCD")
    assert cols["owner"]["type"] == "boolean" and cols["age"]["type"] == "integer"
    assert not cols["income"]["nullable"]  # StandardScaler passes NaN on; the model refuses it
    assert strict_engine.inputs.data_type == "value"


def test_a_frame_with_bad_rows_is_split_row_by_row(strict_engine):
    frame = X.head(3).copy().astype({"age": object})
    frame.loc[1, "age"] = "forty"
    checked, ok, errors = strict_engine.check_rows(frame)
    assert ok == [0, 2] and errors[1] == "age: not a number" and errors[0] is None
    recs = strict_engine.explain_records(checked)
    assert [r["data"][0] for r in recs] == [frame.loc[0, "purpose"], frame.loc[2, "purpose"]]


def test_dates_are_refused_at_build_in_one_line():
    x = X.assign(opened=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(X)), "D"))

    class Model:
        classes_ = np.array([0, 1])

        def predict_proba(self, df):
            return np.tile([0.5, 0.5], (len(df), 1))

    src = SourceModel("sklearn", Model(), "tabular", list(x.columns), ["0", "1"], True, x.head())
    with pytest.raises(UnsupportedModel) as err:
        Engine(src, "permutation", x.head(10), {"max_evals": 300, "seed": 0})
    assert str(err.value).startswith("model: input column 'opened' is datetime64")
    assert "\n" not in str(err.value)
