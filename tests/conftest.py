"""Session fixtures: a real MLflow registry (SQLite in a temp dir) holding tiny fixture models."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import fixtures as fx


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Path:
    """Point MLflow (and every subprocess) at a fresh SQLite registry under a temp EAAS_HOME."""
    home = tmp_path_factory.mktemp("eaas-home")
    os.environ["EAAS_HOME"] = str(home)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    os.environ["EAAS_NUM_THREADS"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    from eaas.explain.registry import configure, use_experiment
    configure()
    use_experiment("fixtures")
    return home


@dataclass
class Models:
    x: object
    y: object
    xgb: object
    logistic: object
    mlp: object
    bert: object
    tokenizer: object


@pytest.fixture(scope="session")
def models(registry) -> Models:
    """Registered fixture models, each with alias `champion` on version 1."""
    import mlflow.lightgbm
    import mlflow.sklearn
    import mlflow.transformers
    import mlflow.xgboost
    from mlflow.tracking import MlflowClient

    x, y = fx.tabular_data()
    example = x.head(60)
    xgb, lr, mlp = fx.train_xgboost(x, y), fx.train_logistic(x, y), fx.train_mlp(x, y)
    fx.register("tiny-xgb", mlflow.xgboost.log_model, xgb, example)
    fx.register("tiny-lgbm", mlflow.lightgbm.log_model, fx.train_lightgbm(x, y), example)
    fx.register(
        "tiny-logistic",
        mlflow.sklearn.log_model,
        lr,
        example,
        skops_trusted_types=fx.skops_types(lr),
    )
    fx.register(
        "tiny-mlp",
        mlflow.sklearn.log_model,
        mlp,
        example,
        skops_trusted_types=fx.skops_types(mlp),
        metadata={"output_names": ["no", "yes"]},
    )
    fx.register(
        "tiny-mlp-nobg",
        mlflow.sklearn.log_model,
        mlp,
        None,
        skops_trusted_types=fx.skops_types(mlp),
        signature=mlflow.models.infer_signature(x, mlp.predict_proba(x)),
    )
    bert, tok = fx.train_tiny_bert()
    with mlflow.start_run(run_name="tiny-bert"):
        mlflow.transformers.log_model(
            transformers_model={"model": bert, "tokenizer": tok},
            name="model",
            task="text-classification",
            registered_model_name="tiny-bert",
            input_example=["good movie", "bad film"],
            pip_requirements=fx.PIP,
        )
    client = MlflowClient()
    for name in ("tiny-xgb", "tiny-lgbm", "tiny-logistic", "tiny-mlp", "tiny-bert"):
        client.set_registered_model_alias(name, "champion", "1")
    return Models(x, y, xgb, lr, mlp, bert, tok)


@pytest.fixture(scope="session")
def built(models) -> dict[str, str]:
    """Explainers built once for the session: source name -> explainer URI."""
    from eaas.explain.build import build_explainer

    out = {}
    for name, kw in {
        "tiny-xgb": {},
        "tiny-logistic": {},
        "tiny-mlp": {"max_evals": 64, "background_size": 20},
        "tiny-bert": {"max_evals": 40},
    }.items():
        out[name] = build_explainer(f"models:/{name}@champion", **kw).uri
    return out


@pytest.fixture(scope="session")
def loan_models(registry) -> dict[str, object]:
    """Mixed-type models (strings, a category, a boolean, numbers), registered as teams do."""
    return fx.register_loan_models()


@pytest.fixture(scope="session")
def loan_built(loan_models) -> dict[str, str]:
    """Their explainers, built by `auto`: source name -> explainer URI."""
    from eaas.explain.build import build_explainer

    return {name: build_explainer(f"models:/{name}/1", max_evals=300).uri
            for name in loan_models}
