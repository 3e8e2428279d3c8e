"""A tabular model eaas cannot explain yet (columns of strings or categories) is refused at
build with one line naming the column, never a traceback, never a guess."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests import fixtures as fx


def _loan(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({
        "amount": rng.normal(10, 3, n),
        "purpose": rng.choice(["car", "travel", "home"], n),
        "age": rng.integers(18, 70, n),
    })
    y = ((x["purpose"] == "travel") ^ (x["amount"] > 10)).astype(int).to_numpy()
    return x, y


@pytest.fixture(scope="module")
def mixed_models(registry) -> None:
    import mlflow.lightgbm
    import mlflow.sklearn
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = _loan()
    pipe = Pipeline([
        ("ct", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose"]),
                                  ("num", StandardScaler(), ["amount", "age"])])),
        ("lr", LogisticRegression()),
    ]).fit(x, y)
    fx.register("loan-pipeline", mlflow.sklearn.log_model, pipe, x.head(20),
                skops_trusted_types=fx.skops_types(pipe),
                signature=mlflow.models.infer_signature(x, pipe.predict_proba(x)))
    xc = x.astype({"purpose": "category"})
    lgbm = LGBMClassifier(n_estimators=10, verbose=-1).fit(xc, y)
    fx.register("loan-lgbm-cat", mlflow.lightgbm.log_model, lgbm, xc.head(20))


@pytest.mark.parametrize("name", ["loan-pipeline", "loan-lgbm-cat"])
def test_refused_at_build_with_one_line_naming_the_column(mixed_models, name):
    from typer.testing import CliRunner

    from eaas.cli import app

    res = CliRunner().invoke(app, ["explainer", "build", "--model", f"models:/{name}/1"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert lines[0].startswith("error: model: input column 'purpose' is ")
    assert "not supported yet" in lines[0]
    client = mlflow.tracking.MlflowClient()
    assert not client.search_registered_models(f"name = '{name}-explainer'")  # nothing registered
