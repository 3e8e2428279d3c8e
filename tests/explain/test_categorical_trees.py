"""Categorical splits and grouped players in the fast exact TreeSHAP.

LightGBM and xgboost are compared with their own contributions on typed frames (unseen
categories and missing values included); HistGradientBoosting and the grouped games with a
brute-force enumeration of the path-dependent value function, written here from each
library's prediction rule and independently of `treeshap`'s parsers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eaas.explain.tabular.tree_inputs import categorical_features, native_margin, native_matrix
from eaas.explain.tabular.treeshap import FastTreeShap
from tests.fixtures import shapley_by_enumeration

# tiny models trained in milliseconds; the numba kernels are shared with test_treeshap.py
pytestmark = pytest.mark.fast

CATS = ["purpose", "region", "grade"]
PURPOSES = ["car", "travel", "education", "home", "other"]


def _loan(n: int = 500, seed: int = 0, classes: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "purpose": pd.Categorical(rng.choice(PURPOSES, n)),
            "region": pd.Categorical(rng.choice([f"r{i}" for i in range(8)], n)),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(10, 0.5, n)),
            "age": rng.integers(18, 70, n),
            "grade": pd.Categorical(rng.choice(list("ABCDEFG"), n)),
        }
    )
    score = (
        frame["purpose"].isin(["car", "home"])
        + 0.8 * frame["region"].isin(["r1", "r3"])
        - 0.3 * frame["grade"].cat.codes
        + np.log(frame["income"].fillna(15000))
        - 10
        + (frame["age"] - 40) / 30
        + rng.normal(0, 0.5, n)
    ).to_numpy(float)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return frame, y


def _rows(frame: pd.DataFrame, purposes: list) -> pd.DataFrame:
    """Eight training rows plus six with unseen categories and missing values, the category
    columns re-typed by value (as a request would arrive)."""
    extra = frame.iloc[:6].astype({c: object for c in CATS})
    extra["purpose"] = purposes
    extra.loc[extra.index[1], "region"] = None
    extra.loc[extra.index[2], ["income", "grade"]] = np.nan, "Bb"
    out = pd.concat([frame.iloc[:8].astype({c: object for c in CATS}), extra])
    return out.astype({c: "category" for c in CATS}).reset_index(drop=True)


def _expect(step, node, s: frozenset) -> float:
    """E[tree | x_S]: follow x at splits on a player in S, else weigh children by cover.
    `step(node)`: a leaf's value, or (player, x goes left, left, right, their covers, node's)."""
    out = step(node)
    if not isinstance(out, tuple):
        return out
    player, go_left, left, right, c_left, c_right, c_node = out
    if player in s:
        return _expect(step, left if go_left else right, s)
    return (c_left * _expect(step, left, s) + c_right * _expect(step, right, s)) / c_node


def _brute(trees, n_players: int) -> np.ndarray:
    """Shapley values of the sum of the trees, given as (step, root) pairs."""
    value = lambda s: sum(_expect(step, root, s) for step, root in trees)  # noqa: E731
    return shapley_by_enumeration(value, n_players)


def _hgb_step(pred, x, known, f_map):
    """A HistGradientBoosting predictor by sklearn's raw-data rule (_predictor.pyx): in the
    left bitset -> left, another known code -> right, NaN, negative or unknown -> missing's."""
    nodes = pred.nodes

    def has(words, c) -> bool:
        return bool((words[c // 32] >> (c % 32)) & 1)

    def step(i):
        nd = nodes[i]
        if nd["is_leaf"]:
            return nd["value"]
        f, miss = nd["feature_idx"], bool(nd["missing_go_to_left"])
        v = x[f]
        if np.isnan(v) or (nd["is_categorical"] and v < 0):
            go = miss
        elif nd["is_categorical"]:
            c = int(v)
            in_left = has(pred.raw_left_cat_bitsets[nd["bitset_idx"]], c)
            go = True if in_left else (False if has(known[f_map[f]], c) else miss)
        else:
            go = v <= nd["num_threshold"]
        lc, rc = nd["left"], nd["right"]
        return f, go, lc, rc, float(nodes[lc]["count"]), float(nodes[rc]["count"]), nd["count"]

    return step


def _sk_step(tree, x, player, leaf):
    """A sklearn tree (float32 inputs, `x <= t`); `leaf(value)`: its value as shap reads it."""
    x32, w = x.astype(np.float32), tree.weighted_n_node_samples

    def step(i):
        lc, rc = tree.children_left[i], tree.children_right[i]
        if lc < 0:
            return leaf(tree.value[i])
        f = tree.feature[i]
        return player[f], x32[f] <= tree.threshold[i], lc, rc, w[lc], w[rc], w[i]

    return step


def _lgb_step(x, player):
    """A LightGBM `dump_model()` tree with numeric splits, by its NumericalDecision."""

    def cover(nd):
        return nd.get("internal_count", nd.get("leaf_count"))

    def step(nd):
        if "split_index" not in nd:
            return nd["leaf_value"]
        f, mt = nd["split_feature"], nd["missing_type"]
        v = 0.0 if np.isnan(x[f]) and mt != "NaN" else x[f]
        missing = (mt == "NaN" and np.isnan(v)) or (mt == "Zero" and v == 0.0)
        go = nd["default_left"] if missing else v <= nd["threshold"]
        lc, rc = nd["left_child"], nd["right_child"]
        return player[f], go, lc, rc, cover(lc), cover(rc), cover(nd)

    return step


def _xgb_step(tree, x, player):
    """An xgboost JSON tree with numeric splits: float32 `x < t`, NaN to the default child."""
    x32, cond, h = x.astype(np.float32), np.float32(tree["split_conditions"]), tree["sum_hessian"]

    def step(i):
        lc, rc = tree["left_children"][i], tree["right_children"][i]
        if lc < 0:
            return float(cond[i])
        f = tree["split_indices"][i]
        go = bool(tree["default_left"][i]) if np.isnan(x32[f]) else x32[f] < cond[i]
        return player[f], go, lc, rc, h[lc], h[rc], h[i]

    return step


@pytest.fixture(scope="module")
def loans():
    return {2: _loan(), 3: _loan(seed=1, classes=3)}


def _booster(flavor: str, frame: pd.DataFrame, y: np.ndarray, trees: int):
    import lightgbm as lgb
    import xgboost as xgb

    if flavor == "lightgbm":
        kw = dict(num_leaves=12, min_child_samples=5, min_data_per_group=5, cat_smooth=1)
        return lgb.LGBMClassifier(n_estimators=trees, verbose=-1, n_jobs=1, **kw).fit(frame, y)
    # purpose (5 values) gets one-hot splits, region and grade partitions
    kw = dict(max_depth=4, tree_method="hist", max_cat_to_onehot=6, enable_categorical=True)
    return xgb.XGBClassifier(n_estimators=trees, n_jobs=1, **kw).fit(frame, y)


def _native_contributions(flavor: str, model, rows: pd.DataFrame) -> np.ndarray:
    """(rows, outputs, features + 1): the library's own TreeSHAP, bias last."""
    if flavor == "lightgbm":
        out = model.predict(rows, pred_contrib=True)
    else:
        import xgboost as xgb

        dm = xgb.DMatrix(rows, enable_categorical=True)
        out = model.get_booster().predict(dm, pred_contribs=True)
    return out.reshape(len(rows), -1, rows.shape[1] + 1)


UNSEEN = ["boat", None, "car", "dog", "home", "fish"]
# LightGBM: unseen or missing -> NaN (right at every split); xgboost re-codes by its stored
# categories (car=0 ... travel=4), an unseen one as the next known one above it
CODED = {"lightgbm": [np.nan, np.nan, 0, np.nan, 2, np.nan], "xgboost": [0, np.nan, 0, 1, 2, 2]}


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("classes", [2, 3])
def test_categorical_boosters_equal_native_contributions(loans, flavor, classes):
    frame, y = loans[classes]
    model = _booster(flavor, frame, y, 25 if flavor == "lightgbm" else 15)
    rows = _rows(frame, UNSEEN)
    x = native_matrix(model, flavor, rows)
    assert np.array_equal(x[8:, 0], CODED[flavor], equal_nan=True)
    fast = FastTreeShap(model, flavor, 5)
    assert (fast.in_mtype >= 3).sum() > 10  # categorical splits, read as such
    phi, base = fast.shap_values(x)
    native = _native_contributions(flavor, model, rows)
    assert np.abs(phi - native[:, :, :5].transpose(0, 2, 1)).max() < 1e-6
    assert np.abs(base - native[0, :, 5]).max() < 1e-6
    margin = native_margin(model, flavor, rows)
    assert np.abs(base + phi.sum(axis=1) - margin).max() < 1e-6
    assert categorical_features(model, flavor) == [0, 1, 4]


def test_xgboost_unseen_category_above_every_known_one_is_refused(loans):
    import xgboost as xgb

    model = _booster("xgboost", *loans[2], trees=2)
    rows = _rows(loans[2][0], ["zebra"] * 6)
    with pytest.raises(xgb.core.XGBoostError, match="not in the training set"):
        native_margin(model, "xgboost", rows)
    with pytest.raises(ValueError, match="zebra"):
        native_matrix(model, "xgboost", rows)


def _hgb(kind: str, loans):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    frame, y = loans[3 if kind == "multiclass" else 2]
    cls = HistGradientBoostingRegressor if kind == "regressor" else HistGradientBoostingClassifier
    target = y + frame["age"].to_numpy() / 50 if kind == "regressor" else y
    model = cls(max_iter=8, max_leaf_nodes=8, categorical_features="from_dtype", random_state=0)
    return model.fit(frame, target), frame


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regressor"])
def test_hist_gradient_boosting_equals_brute_force(loans, kind):
    model, frame = _hgb(kind, loans)
    rows = _rows(frame, UNSEEN)
    phi, base = FastTreeShap(model, "sklearn", 5).shap_values(native_matrix(model, "sklearn", rows))
    assert np.abs(base + phi.sum(axis=1) - model._raw_predict(rows)).max() < 1e-6
    assert np.abs(native_margin(model, "sklearn", rows) - model._raw_predict(rows)).max() == 0
    # the trees see the preprocessor's columns, transformer by transformer (categories first)
    pre = model._preprocessor
    to_frame = np.concatenate(
        [np.flatnonzero(c) for n, _, c in pre.transformers_ if n != "remainder"]
    )
    assert to_frame.tolist() == [0, 1, 4, 2, 3]
    coded = pre.transform(rows)
    known, f_map = model._bin_mapper.make_known_categories_bitsets()
    for r in [0, 3, 8, 9, 10, 11, 13]:
        for k in range(phi.shape[2]):
            trees = [(_hgb_step(it[k], coded[r], known, f_map), 0) for it in model._predictors]
            assert np.abs(phi[r, to_frame, k] - _brute(trees, 5)).max() < 1e-9


def _odd_codes(x: np.ndarray, columns=(0, 1, 4)) -> np.ndarray:
    """Negative, fractional, unknown and huge codes, and NaN, in the categorical columns."""
    odd = np.array([np.nan, -3, -1, -0.5, 0, 0.7, 1, 2.5, 4, 7, 9, 40, 1e9])
    rng = np.random.default_rng(5)
    x = x.copy()
    for j in columns:
        x[:, j] = rng.choice(odd, len(x))
    return x


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost"])
def test_raw_codes_follow_the_librarys_rule(loans, flavor):
    """The native prediction on the same raw matrix is base + sum(phi)."""
    import xgboost as xgb

    model = _booster(flavor, *loans[2], trees=10)
    x = _odd_codes(native_matrix(model, flavor, loans[2][0].iloc[:300]))
    if flavor == "lightgbm":
        native = model.booster_.predict(x, raw_score=True)
    else:
        b = model.get_booster()
        kw = dict(feature_names=b.feature_names, feature_types=b.feature_types)
        native = b.predict(xgb.DMatrix(x, enable_categorical=True, **kw), output_margin=True)
    phi, base = FastTreeShap(model, flavor, 5).shap_values(x)
    assert np.abs(base + phi.sum(axis=1)[:, 0] - native).max() < 1e-6


def test_raw_codes_follow_sklearns_rule(loans):
    model, frame = _hgb("binary", loans)
    x = _odd_codes(native_matrix(model, "sklearn", frame.iloc[:300]))
    x[np.abs(x) > 255] = 3  # sklearn casts codes to uint8: past 255 is undefined there
    trees_x = np.ascontiguousarray(x[:, [0, 1, 4, 2, 3]])  # its trees see categories first
    native = np.zeros((len(x), 1)) + model._baseline_prediction
    model._predict_iterations(trees_x, model._predictors, native, False, 1)
    phi, base = FastTreeShap(model, "sklearn", 5).shap_values(x)
    assert np.abs(base + phi.sum(axis=1) - native).max() < 1e-9


def test_plain_string_columns_are_coded_like_categories(loans):
    rows = _rows(loans[2][0], UNSEEN)
    plain = rows.astype({c: object for c in CATS})
    models = {f: _booster(f, *loans[2], trees=3) for f in ("lightgbm", "xgboost")}
    models["sklearn"] = _hgb("binary", loans)[0]
    for flavor, model in models.items():
        for pick in (slice(None), [9]):  # [9]: one row, its region missing (an empty column)
            typed = native_matrix(model, flavor, rows.iloc[pick])
            got = native_matrix(model, flavor, plain.iloc[pick])
            assert np.array_equal(got, typed, equal_nan=True), flavor
            margins = [native_margin(model, flavor, f.iloc[pick]) for f in (plain, rows)]
            assert np.array_equal(*margins), flavor


def test_numeric_hist_gradient_boosting_equals_brute_force(loans):
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = loans[3][0][["income", "age"]].iloc[:300]
    model = HistGradientBoostingClassifier(max_iter=5, max_leaf_nodes=6, random_state=0)
    x = native_matrix(model.fit(frame, loans[3][1][:300]), "sklearn", frame.iloc[:20])
    assert np.isnan(x).any() and model._preprocessor is None
    phi, base = FastTreeShap(model, "sklearn", 2).shap_values(x)
    assert np.abs(base + phi.sum(axis=1) - model._raw_predict(frame.iloc[:20])).max() < 1e-9
    for r in range(0, 20, 3):
        for k in range(3):
            trees = [(_hgb_step(it[k], x[r], None, None), 0) for it in model._predictors]
            assert np.abs(phi[r, :, k] - _brute(trees, 2)).max() < 1e-9


def _one_hot_pipeline(loans, estimator):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame, y = loans[2]
    frame = frame.assign(income=frame["income"].fillna(30000.0))
    nums = ["income", "age"]
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), CATS), ("num", "passthrough", nums)]
    )
    pipe = Pipeline([("pre", pre), ("model", estimator)]).fit(frame, y)
    # one player per original column: the one-hot columns of a category share its player
    ohe = pre.named_transformers_["cat"]
    players = np.concatenate(
        [np.full(len(c), CATS.index(n)) for n, c in zip(CATS, ohe.categories_, strict=True)]
        + [np.array([3, 4])]
    )
    rows = _rows(frame, UNSEEN)
    rows["income"] = rows["income"].fillna(30000.0)
    x = pre.transform(rows)  # sparse when mostly zeros
    return pipe, np.asarray(x.toarray() if hasattr(x, "toarray") else x, float), players


@pytest.mark.parametrize("kind", ["gradient-boosting", "random-forest"])
def test_players_group_one_hot_columns(loans, kind):
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    est = (
        GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0)
        if kind == "gradient-boosting"
        else RandomForestClassifier(4, max_depth=5, random_state=0, n_jobs=1)
    )
    pipe, x, players = _one_hot_pipeline(loans, est)
    fast = FastTreeShap(pipe["model"], "sklearn", x.shape[1], players=players)
    phi, base = fast.shap_values(x)
    assert phi.shape == (len(x), 5, base.size)
    single, _ = FastTreeShap(pipe["model"], "sklearn", x.shape[1]).shap_values(x)
    assert np.abs(phi.sum(axis=1) - single.sum(axis=1)).max() < 1e-9  # both efficient
    summed = np.stack([single[:, players == p].sum(axis=1) for p in range(5)], axis=1)
    assert np.abs(phi - summed).max() > 1e-4  # a group's value is not its members' sum
    if kind == "gradient-boosting":  # raw log-odds: leaf values times the learning rate
        out, ests, leaf = 0, est.estimators_[:, 0], lambda v: est.learning_rate * v[0, 0]
    else:  # class 1's probability, averaged over the trees
        out, ests, leaf = 1, est.estimators_, lambda v: v[0, 1] / v[0].sum() / len(ests)
    for r in [0, 5, 8, 11, 13]:
        trees = [(_sk_step(e.tree_, x[r], players, leaf), 0) for e in ests]
        assert np.abs(phi[r, :, out] - _brute(trees, 5)).max() < 1e-9


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost"])
def test_players_on_numeric_boosters(flavor):
    import lightgbm as lgb
    import xgboost as xgb

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 6))
    y = (x[:, 0] + x[:, 1] * x[:, 2] - x[:, 3] ** 2 + x[:, 5] > 0).astype(int)
    x[rng.random(x.shape) < 0.08] = np.nan
    players = np.array([0, 2, 1, 1, 2, 0])  # groups need not be contiguous
    if flavor == "lightgbm":
        model = lgb.LGBMClassifier(n_estimators=6, num_leaves=10, verbose=-1, n_jobs=1).fit(x, y)
        dumps = [t["tree_structure"] for t in model.booster_.dump_model()["tree_info"]]
        make = lambda row: [(_lgb_step(row, players), d) for d in dumps]  # noqa: E731
    else:
        model = xgb.XGBClassifier(n_estimators=6, max_depth=4, n_jobs=1).fit(x, y)
        raw = json.loads(model.get_booster().save_raw("json"))
        jtrees = raw["learner"]["gradient_booster"]["model"]["trees"]
        make = lambda row: [(_xgb_step(t, row, players), 0) for t in jtrees]  # noqa: E731
    phi, _ = FastTreeShap(model, flavor, 6, players=players).shap_values(x[:10])
    assert np.isnan(x[:10]).any()
    for r in range(10):
        assert np.abs(phi[r, :, 0] - _brute(make(x[r]), 3)).max() < 1e-6


def test_players_none_is_every_feature_its_own_player(loans):
    model = _booster("lightgbm", *loans[2], trees=5)
    x = native_matrix(model, "lightgbm", loans[2][0].iloc[:50])
    same = FastTreeShap(model, "lightgbm", 5, players=np.arange(5)).shap_values(x)[0]
    assert np.array_equal(FastTreeShap(model, "lightgbm", 5).shap_values(x)[0], same)
    for bad in ([0, 1, 2], [0, 1, 2, 3, -1], [0.0, 1.0, 2.0, 3.0, 4.0]):
        with pytest.raises(ValueError, match="players"):
            FastTreeShap(model, "lightgbm", 5, players=np.array(bad))
