"""Exact methods equal brute-force Shapley values; predictions equal the model's own."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests import fixtures as fx

TOL = 1e-6


def _load(uri: str):
    return mlflow.pyfunc.load_model(uri)


def _rows(models, n: int = 4) -> pd.DataFrame:
    return models.x.iloc[100 : 100 + n].reset_index(drop=True)


def test_tree_equals_brute_force_path_dependent_shapley(models, built):
    x = _rows(models)
    out = _load(built["tiny-xgb"]).predict(x)
    booster = models.xgb.get_booster()
    for i in range(len(x)):
        phi = fx.shapley_by_enumeration(fx.xgb_path_value(booster, x.iloc[i].to_numpy()), 5)
        values = np.array(out["values"][i])
        assert np.abs(values[1] - phi).max() < TOL, (values[1], phi)
        assert np.allclose(values[0], -values[1])  # log-odds of class 0 is minus class 1's


def test_tree_prediction_is_the_models_log_odds_and_additive(models, built):
    x = _rows(models)
    out = _load(built["tiny-xgb"]).predict(x)
    p = models.xgb.predict_proba(x)[:, 1].astype(float)
    pred = np.array(out["prediction"].tolist())
    assert np.abs(pred[:, 1] - np.log(p / (1 - p))).max() < 1e-5  # xgboost computes in float32
    scale = np.abs(pred).max()
    assert (out["additivity_error"] <= TOL * max(1.0, scale)).all()
    assert out["output_names"][0] == ["0", "1"]


def test_linear_equals_brute_force_interventional_shapley(models, built):
    m = _load(built["tiny-logistic"])
    bg = m.unwrap_python_model().engine.method.background.to_numpy()
    x = _rows(models)
    out = m.predict(x)
    for i in range(len(x)):
        v = fx.interventional_value(models.logistic.decision_function, x.iloc[i].to_numpy(), bg)
        phi = fx.shapley_by_enumeration(v, 5)
        assert np.abs(np.array(out["values"][i][1]) - phi).max() < TOL
    margin = models.logistic.decision_function(x)
    assert np.abs(np.array(out["prediction"].tolist())[:, 1] - margin).max() < 1e-9
    assert (out["additivity_error"] < TOL).all()


def test_kernel_with_every_coalition_equals_brute_force(models):
    from eaas.explain.build import build_explainer

    res = build_explainer(
        "models:/tiny-mlp/1",
        method="kernel",
        background_size=8,
        max_evals=2**5,
        name="tiny-mlp-kernel",
    )
    bg = res.engine.method.background.to_numpy()
    x = _rows(models, 2)
    out = res.engine.explain(x)
    for i in range(len(x)):
        f = lambda a: models.mlp.predict_proba(pd.DataFrame(a, columns=x.columns))[:, 1]  # noqa: E731
        phi = fx.shapley_by_enumeration(fx.interventional_value(f, x.iloc[i].to_numpy(), bg), 5)
        assert np.abs(np.array(out["values"][i][1]) - phi).max() < TOL
    proba = models.mlp.predict_proba(x)
    assert np.abs(np.array(out["prediction"].tolist()) - proba).max() < 1e-12


def test_permutation_is_seeded_batch_invariant_and_additive(models, built):
    m = _load(built["tiny-mlp"])
    x = _rows(models, 3)
    # 29 evaluations: sampled (2^5 - 2 = 30 would cover every coalition: exact, seed-free)
    a = m.predict(x, params={"seed": 7, "max_evals": 29})
    b = m.predict(x, params={"seed": 7, "max_evals": 29})
    c = m.predict(x, params={"seed": 8, "max_evals": 29})
    alone = m.predict(x.iloc[[2]], params={"seed": 7, "max_evals": 29})
    exact = m.predict(x, params={"seed": 8})  # the default budget covers every coalition
    assert m.predict(x, params={"seed": 9})["values"].tolist() == exact["values"].tolist()
    assert np.max(exact["approximation_error"].tolist()) == 0
    assert a["values"].tolist() == b["values"].tolist()
    assert a["values"].tolist() != c["values"].tolist()
    assert a["values"][2] == alone["values"][0]  # a row's numbers do not depend on its batch
    assert (a["additivity_error"] < 1e-9).all()
    assert a["output_names"][0] == ["no", "yes"]
    assert np.abs(np.array(a["prediction"].tolist()) - models.mlp.predict_proba(x)).max() < 1e-12


def test_loaded_explainer_equals_the_one_just_built(models):
    from eaas.explain.build import build_explainer

    res = build_explainer(
        "models:/tiny-mlp/1",
        method="partition",
        background_size=15,
        max_evals=100,
        seed=3,
        name="tiny-mlp-partition",
    )
    x = _rows(models, 3)
    fresh = res.engine.explain(x)
    loaded = _load(res.uri).predict(x)
    pd.testing.assert_frame_equal(fresh, loaded)
    assert (loaded["additivity_error"] < 1e-9).all()


def test_lightgbm_tree_is_additive_against_the_models_margin(models):
    from eaas.explain.build import build_explainer

    res = build_explainer("models:/tiny-lgbm@champion")
    assert res.method == "tree" and res.output_space == "log_odds"
    x = _rows(models)
    out = _load(res.uri).predict(x)
    margin = res.engine.source.model.predict(x, raw_score=True)
    assert np.abs(np.array(out["prediction"].tolist())[:, 1] - margin).max() < 1e-9
    assert (out["additivity_error"] < TOL).all()


@pytest.mark.parametrize(
    "frame, field, reason",
    [
        (lambda x: x.drop(columns=["f2"]), "f2", "missing"),
        (lambda x: x.assign(extra=1.0), "extra", "unexpected"),
        (lambda x: x.assign(f1=x["f1"].astype(object).where(x.index != 0, "abc")), "f1", "number"),
        (lambda x: x.assign(f3=np.nan), "f3", "missing value"),
        (lambda x: x.assign(f0=np.inf), "f0", "infinite"),
    ],
)
def test_bad_tabular_input_names_the_field(models, built, frame, field, reason):
    from eaas.explain.errors import InvalidInput

    with pytest.raises(InvalidInput, match=reason) as exc:
        _load(built["tiny-mlp"]).predict(frame(_rows(models, 2)))
    # the core's one rule names the instance and the field, as over REST
    assert exc.value.field == f"instances[0].{field}" and exc.value.status == 422


def test_xgboost_takes_missing_values(models, built):
    x = _rows(models, 2).assign(f3=np.nan)
    out = _load(built["tiny-xgb"]).predict(x)
    assert len(out) == 2 and (out["additivity_error"] < TOL * 10).all()


def test_concurrent_threads_get_the_numbers_of_a_single_thread(models, built):
    from concurrent.futures import ThreadPoolExecutor

    m = _load(built["tiny-mlp"])
    rows = [_rows(models, 6).iloc[[i]] for i in range(6)]
    alone = [m.predict(r, params={"seed": 4})["values"][0] for r in rows]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda r: m.predict(r, params={"seed": 4})["values"][0], rows))
    assert together == alone
