"""The fast exact TreeSHAP equals the native libraries' contributions and brute-force Shapley
values of the path-dependent value function, written here independently of its parser."""

from __future__ import annotations

import numpy as np
import pytest

from eaas.explain.tabular import treeshap
from eaas.explain.tabular.treeshap import FastTreeShap
from tests.fixtures import shapley_by_enumeration

# small forests trained in milliseconds; the first run compiles the numba kernels (~10 s)
pytestmark = pytest.mark.fast

NF = 6


def _data(n: int = 400, nan: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, NF))
    x[:, 1] = np.round(x[:, 1])  # repeated thresholds and exact zeros (LightGBM's Zero type)
    y = (x[:, 0] + x[:, 1] * x[:, 2] - x[:, 3] ** 2 + rng.normal(0, 0.3, n) > 0).astype(int)
    if nan:
        x[rng.random(x.shape) < nan] = np.nan
    return x, y


def _expect(node, x, s, split, children, cover) -> float:
    """E[tree | x_S] with cover-weighted branches for features outside S."""
    kids = children(node)
    if kids is None:
        return node["leaf"]
    f, go_left = split(node, x)
    left, right = kids
    if f in s:
        return _expect(left if go_left else right, x, s, split, children, cover)
    return (cover(left) * _expect(left, x, s, split, children, cover)
            + cover(right) * _expect(right, x, s, split, children, cover)) / cover(node)


def _lgbm_value(booster, x):
    trees = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]

    def split(node, x):
        v, f = x[node["split_feature"]], node["split_feature"]
        if np.isnan(v) and node["missing_type"] != "NaN":
            v = 0.0
        missing = (node["missing_type"] == "NaN" and np.isnan(v)) or (
            node["missing_type"] == "Zero" and v == 0.0)
        return f, node["default_left"] if missing else v <= node["threshold"]

    def children(node):
        if "split_index" not in node:
            node.setdefault("leaf", node["leaf_value"])
            return None
        return node["left_child"], node["right_child"]

    def cover(node):
        return node.get("internal_count", node.get("leaf_count"))

    return lambda s: sum(_expect(t, x, s, split, children, cover) for t in trees)


def _sklearn_value(forest, x):
    x32 = x.astype(np.float32).astype(float)
    trees = [e.tree_ for e in forest.estimators_]

    def value(t, s, node=0) -> float:
        left, right = t.children_left[node], t.children_right[node]
        if left < 0:
            v = t.value[node, 0]
            return v[1] / v.sum()
        f = t.feature[node]
        if f in s:
            return value(t, s, left if x32[f] <= t.threshold[node] else right)
        w = t.weighted_n_node_samples
        return (w[left] * value(t, s, left) + w[right] * value(t, s, right)) / w[node]

    return lambda s: sum(value(t, s) for t in trees) / len(trees)


@pytest.fixture(scope="module")
def small():
    import lightgbm as lgb
    from sklearn.ensemble import RandomForestClassifier

    x, y = _data(nan=0.1)
    xf, yf = _data(seed=1)
    return {
        "lgbm": lgb.LGBMClassifier(n_estimators=6, num_leaves=12, min_child_samples=5,
                                   verbose=-1, n_jobs=1).fit(x, y),
        "lgbm-zero": lgb.LGBMClassifier(n_estimators=6, num_leaves=12, min_child_samples=5,
                                        zero_as_missing=True, verbose=-1, n_jobs=1).fit(x, y),
        "rf": RandomForestClassifier(5, max_depth=5, random_state=0, n_jobs=1).fit(xf, yf),
        "x": x, "xf": xf,
    }


@pytest.mark.parametrize("name", ["lgbm", "lgbm-zero"])
def test_lightgbm_equals_brute_force_shapley_with_missing_values(small, name):
    fast = FastTreeShap(small[name], "lightgbm", NF)
    rows = small["x"][:6]
    assert np.isnan(rows).any() and (rows == 0).any()
    phi, _ = fast.shap_values(rows)
    for i, row in enumerate(rows):
        ref = shapley_by_enumeration(_lgbm_value(small[name].booster_, row), NF)
        assert np.abs(phi[i, :, 0] - ref).max() < 1e-6


def test_random_forest_equals_brute_forceshapley_by_enumeration(small):
    fast = FastTreeShap(small["rf"], "sklearn", NF)
    rows = small["xf"][:4]
    phi, base = fast.shap_values(rows)
    for i, row in enumerate(rows):
        v = _sklearn_value(small["rf"], row)
        ref = shapley_by_enumeration(v, NF)
        assert np.abs(phi[i, :, 1] - ref).max() < 1e-6
        assert abs(base[1] - v(frozenset())) < 1e-9


def test_run_time_formula_equals_the_tables(small, monkeypatch):
    """Leaves past the table budget take the O(d^2) path: the same numbers."""
    rows = small["x"][:50]
    tabled, _ = FastTreeShap(small["lgbm"], "lightgbm", NF).shap_values(rows)
    monkeypatch.setattr(treeshap, "TABLE_BUDGET", 0)
    direct = FastTreeShap(small["lgbm"], "lightgbm", NF)
    assert direct.tabled_leaves == 0.0
    assert np.abs(direct.shap_values(rows)[0] - tabled).max() < 1e-12


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "sklearn-rf", "sklearn-gb"])
def test_equals_native_contributions(kind):
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

    x, y = _data(600, nan=0.0 if kind.startswith("sklearn") else 0.08, seed=2)
    if kind == "xgboost":
        model = xgb.XGBClassifier(n_estimators=20, max_depth=7, n_jobs=1).fit(x, y)
        native = model.get_booster().predict(xgb.DMatrix(x), pred_contribs=True)
    elif kind == "lightgbm":
        model = lgb.LGBMRegressor(n_estimators=20, num_leaves=40, verbose=-1, n_jobs=1)
        native = model.fit(x, y * 2.0 - 1).predict(x, pred_contrib=True)
    else:
        import shap

        cls = RandomForestRegressor if kind == "sklearn-rf" else GradientBoostingRegressor
        model = cls(n_estimators=10, max_depth=6, random_state=0).fit(x, x[:, 0] + y)
        ex = shap.TreeExplainer(model)
        native = np.column_stack([ex.shap_values(x), np.full(len(x), ex.expected_value)])
    phi, base = FastTreeShap(model, kind.split("-")[0], NF).shap_values(x)
    scale = max(1.0, np.abs(native).max())
    assert np.abs(phi[:, :, 0] - native[:, :-1]).max() < 1e-4 * scale  # float32 natives
    assert abs(base[0] - native[0, -1]) < 1e-4 * scale


def test_integer_categories_are_read_exactly():
    """A pandas category of integers (LightGBM codes it by position): the fast path reads the
    categorical splits and equals LightGBM's own contributions (the full loan-frame cases are in
    test_categorical_trees.py)."""
    import lightgbm as lgb
    import pandas as pd

    from eaas.explain.tabular.tree_inputs import native_matrix

    x, y = _data(300, seed=3)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(NF)])
    cat = (np.abs(x[:, 5]) * 3).astype(int)
    df["f5"] = pd.Categorical(cat)
    y = (cat % 2 == 0).astype(int)  # only a categorical split separates this
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1, min_data_per_group=5,
                               cat_smooth=1).fit(df, y)
    assert "==" in str(model.booster_.dump_model())
    phi, base = FastTreeShap(model, "lightgbm", NF).shap_values(
        native_matrix(model, "lightgbm", df))
    native = model.predict(df, pred_contrib=True)
    assert np.abs(phi[:, :, 0] - native[:, :-1]).max() < 1e-9
    assert np.abs(base[0] - native[0, -1]) < 1e-9
