"""Mixed-type models logged the way teams log them (a sklearn pipeline, LightGBM on category
columns, a custom pyfunc), built by `auto` from the registry, then through the pyfunc, the REST
service and the Spark worker's path: one value per input column, `data` as the model got it."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests import fixtures as fx

X, _ = fx.loan_data(400)
ROWS = X.iloc[[50, 51, 52]].reset_index(drop=True)
AUTO = {"loan-pipeline": ("linear", "log_odds"), "loan-lgbm": ("tree", "log_odds"),
        "loan-pyfunc": ("permutation", "raw"), "loan-xgb": ("tree", "log_odds"),
        "loan-hgb": ("tree", "log_odds")}
CATS = {"purpose": "category", "region": "category"}


def _own(name: str, model, frame: pd.DataFrame) -> np.ndarray:
    """The model's own output in its explainer's output space (the class-1 margin or risk)."""
    if name == "loan-pipeline":
        return model.decision_function(frame)
    if name == "loan-lgbm":
        return model.predict(frame.astype(CATS), raw_score=True)
    if name == "loan-xgb":
        return model.predict(frame.astype(CATS), output_margin=True)
    if name == "loan-hgb":
        return model.decision_function(frame.astype(CATS))
    return model.predict(None, frame)["risk"].to_numpy()


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in frame.astype(object).to_dict("records")]


@pytest.mark.parametrize("name", list(AUTO))
def test_pyfunc_explains_each_input_column(loan_built, loan_models, name):
    method, space = AUTO[name]
    meta = mlflow.models.get_model_info(loan_built[name]).metadata["eaas"]
    assert (meta["method"], meta["output_space"]) == (method, space)
    out = mlflow.pyfunc.load_model(loan_built[name]).predict(ROWS)
    own = _own(name, loan_models[name], ROWS)
    # xgboost sums float32 leaves in float32: its own contributions miss its margin by ~1e-6 too
    tol = 5e-6 if name == "loan-xgb" else 1e-9
    for i in range(len(ROWS)):
        assert list(out["features"][i]) == list(X.columns)
        assert list(out["data"][i]) == list(_records(ROWS)[i].values())
        assert abs(out["prediction"][i][-1] - own[i]) < tol
        assert out["additivity_error"][i] < tol


@pytest.mark.parametrize("name", ["loan-lgbm", "loan-xgb"])
def test_native_categories_equal_the_librarys_own_contributions(loan_built, loan_models, name):
    from eaas.explain.errors import InvalidInput

    model, explainer = loan_models[name], mlflow.pyfunc.load_model(loan_built[name])
    rows = ROWS.copy()
    rows.loc[2, "purpose"] = "boat"  # unseen: LightGBM sends it right at every category split
    if name == "loan-xgb":  # xgboost refuses some unseen values (and mis-codes others)
        with pytest.raises(InvalidInput, match=r"^instances\[2\]\.purpose: a value the model "
                                               r"has not seen, and it cannot take one$"):
            explainer.predict(rows)
        rows = ROWS
    out = explainer.predict(rows)
    if name == "loan-lgbm":
        native = model.predict(rows.astype(CATS), pred_contrib=True)
    else:
        import xgboost

        dm = xgboost.DMatrix(rows.astype(CATS), enable_categorical=True)
        native = model.get_booster().predict(dm, pred_contribs=True)
    got = np.array([v[1] for v in out["values"]])
    assert np.abs(got - native[:, :-1]).max() < 1e-6
    assert np.abs(np.array([p[1] for p in out["prediction"]]) - native.sum(axis=1)).max() < 1e-5


def test_rest_takes_and_returns_typed_values(loan_built, loan_models):
    from tests.api.conftest import live_server

    records = _records(ROWS)
    records[1]["purpose"] = "wedding"  # unseen: the pipeline's encoder ignores it
    with live_server(models=list(AUTO)) as client:
        res = client.post("/v1/models/loan-pipeline:explain", json={"instances": records})
        assert res.status_code == 200, res.text
        exps = res.json()["explanations"]
        bad = client.post("/v1/models/loan-lgbm:explain",
                          json={"instances": [records[0] | {"age": "forty"}]})
    assert [e["data"] for e in exps] == [list(r.values()) for r in records]
    assert isinstance(exps[0]["data"][3], bool) and isinstance(exps[0]["data"][4], int)
    own = _own("loan-pipeline", loan_models["loan-pipeline"], pd.DataFrame(records))
    assert np.abs(np.array([e["prediction"][1] for e in exps]) - own).max() < 1e-9
    assert bad.status_code == 422
    assert bad.json()["error"]["message"] == "instances[0].age: not a number"


def test_spark_worker_writes_typed_data(loan_built):
    import pyarrow as pa

    from eaas.batch.worker import WorkerSpec, explain_record_batch
    from eaas.explain.pyfunc import load_explainer
    from eaas.explain.schema import from_typed

    engine = load_explainer(loan_built["loan-pipeline"])
    frame = ROWS.astype({"age": str})  # numbers as text, as a CSV reader leaves a bad column
    frame.loc[1, "age"] = "forty"
    batch = pa.RecordBatch.from_pandas(frame.assign(id=[1, 2, 3]), preserve_index=False)
    spec = WorkerSpec("m", "", "", tuple(X.columns), ("id",))
    out = explain_record_batch(batch, spec, engine)
    assert out.column("status").to_pylist() == ["ok", "error", "ok"]
    assert out.column("error").to_pylist()[1] == "age: not a number"
    data = out.column("data").to_pylist()
    assert from_typed(data[0]) == [v if not isinstance(v, bool) else float(v)
                                   for v in _records(ROWS)[0].values()]
