"""`eaas demo`: register the three demo models (alias champion) and build their explainers.

Re-running reuses what is registered (unless --retrain) and only builds missing explainers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer

from eaas.explain.build import build_explainer
from eaas.explain.quiet import quiet_notices
from eaas.explain.registry import configure, use_experiment
from eaas.explain.settings import CoreSettings

EXPERIMENT = "eaas-demo"
ALIAS = "champion"
CANCER_OUTPUTS = ["malignant", "benign"]  # sklearn's target: 0 = malignant, 1 = benign
PIP = ["scikit-learn==1.9.1", "xgboost-cpu==3.2.0", "torch==2.13.0", "transformers==5.23.0"]


def demo_dir() -> Path:
    d = CoreSettings().home_dir / "demo"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cancer_data() -> tuple[pd.DataFrame, pd.Series]:
    ds = load_breast_cancer(as_frame=True)
    return ds.data, ds.target


def _champion(client: MlflowClient, name: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, ALIAS).version
    except MlflowException:
        return None


def _register_xgboost(x: pd.DataFrame, y: pd.Series) -> None:
    import mlflow.xgboost
    from xgboost import XGBClassifier

    model = XGBClassifier(
        n_estimators=100, max_depth=4, learning_rate=0.1, n_jobs=1, random_state=0
    ).fit(x, y)
    mlflow.log_metric("train_accuracy", float((model.predict(x) == y).mean()))
    mlflow.xgboost.log_model(
        model,
        name="model",
        input_example=x.sample(100, random_state=0),
        registered_model_name="breast-cancer",
        pip_requirements=PIP,
        metadata={"output_names": CANCER_OUTPUTS},
    )


def _register_mlp(x: pd.DataFrame, y: pd.Series) -> None:
    import mlflow.sklearn
    import skops.io
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=500, random_state=0))
    model.fit(x, y)
    mlflow.log_metric("train_accuracy", float((model.predict(x) == y).mean()))
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))  # types we just produced
    mlflow.sklearn.log_model(
        model,
        name="model",
        input_example=x.sample(100, random_state=0),
        registered_model_name="breast-cancer-mlp",
        pip_requirements=PIP,
        skops_trusted_types=trusted,
        metadata={"output_names": CANCER_OUTPUTS},
    )


def _register_sentiment(train_seconds: float) -> float:
    import mlflow.transformers

    from eaas.sentiment import fine_tune

    res = fine_tune(train_seconds)
    mlflow.log_metrics(
        {"heldout_accuracy": res.accuracy, "train_steps": res.steps, "train_seconds": res.seconds}
    )
    mlflow.transformers.log_model(
        transformers_model={"model": res.model, "tokenizer": res.tokenizer},
        name="model",
        task="text-classification",
        registered_model_name="sentiment",
        input_example=["a gripping, beautifully acted film", "a tedious and predictable mess"],
        pip_requirements=PIP,  # inferring them imports torchvision, which has no CPU build here
    )
    print(
        f"sentiment: held-out accuracy {res.accuracy:.3f} after {res.steps} steps "
        f"({res.seconds:.0f} s)"
    )
    return res.accuracy


def _ensure(client: MlflowClient, name: str, retrain: bool, train) -> str:
    version = _champion(client, name)
    if version and not retrain:
        print(f"{name}: reusing registered version {version} (@{ALIAS})")
        return version
    use_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=name), quiet_notices():
        train()
    version = max(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    client.set_registered_model_alias(name, ALIAS, version.version)
    print(f"{name}: registered version {version.version} (@{ALIAS})")
    return version.version


def write_samples(x: pd.DataFrame) -> None:
    """Sample input files for batch jobs and reports."""
    from eaas.sentiment import load_snippets

    x.sample(200, random_state=1).reset_index(drop=True).to_parquet(
        demo_dir() / "breast_cancer_sample.parquet", index=False
    )
    _, test = load_snippets()
    test[["text"]].sample(250, random_state=1).reset_index(drop=True).to_parquet(
        demo_dir() / "sentiment_sample.parquet", index=False
    )


# the sentiment report explains 200 held-out reviews (movies never seen in training)
REPORT_SAMPLES = {"breast-cancer": 200, "breast-cancer-mlp": 100, "sentiment": 200}


def _report(client: MlflowClient, name: str, retrain: bool) -> None:
    """A review report per demo model, explained on the spot from its sample file."""
    from eaas.reports import build_report

    version = client.get_model_version_by_alias(name, ALIAS)
    if "eaas.report_run_id" in version.tags and not retrain:
        print(f"{name}: report {version.tags['eaas.report_uri']} already made")
        return
    data = demo_dir() / (
        "sentiment_sample.parquet" if name == "sentiment" else "breast_cancer_sample.parquet"
    )
    t0 = time.monotonic()
    with quiet_notices():
        res = build_report(model=f"{name}@{ALIAS}", data=data, sample=REPORT_SAMPLES[name])
    print(f"{name}: report on {REPORT_SAMPLES[name]} rows in {time.monotonic() - t0:.0f} s")
    print(f"{name}: report {res.report_path}")


def run_demo(train_seconds: float = 240, retrain: bool = False) -> list[str]:
    start = time.monotonic()
    client = configure()
    x, y = cancer_data()
    models = {
        "breast-cancer": lambda: _register_xgboost(x, y),
        "breast-cancer-mlp": lambda: _register_mlp(x, y),
        "sentiment": lambda: _register_sentiment(train_seconds),
    }
    write_samples(x)
    backgrounds = {"sentiment": demo_dir() / "sentiment_sample.parquet"}  # texts for the charts
    uris = []
    for name, train in models.items():
        version = _ensure(client, name, retrain, train)
        tags = client.get_model_version(name, version).tags
        if "eaas.explainer" in tags and not retrain:
            print(f"{name}: explainer {tags['eaas.explainer']} already built")
            uris.append(tags["eaas.explainer"])
            continue
        res = build_explainer(f"models:/{name}@{ALIAS}", background=backgrounds.get(name))
        print(f"{name}: built {res.method} explainer {res.uri} ({res.output_space})")
        uris.append(res.uri)
    for name in models:
        _report(client, name, retrain)
    print(f"tracking URI: {mlflow.get_tracking_uri()}")
    print(f"demo ready in {time.monotonic() - start:.0f} s; sample inputs in {demo_dir()}")
    return uris


DEMO_MODELS = ("breast-cancer@champion", "breast-cancer-mlp@champion", "sentiment@champion")


def print_curl_examples(base: str) -> None:
    """Working requests against the demo models (one tabular row, one text)."""
    row = cancer_data()[0].iloc[0].to_dict()
    tabular = json.dumps({"instances": [row], "parameters": {"top_k": 5}})
    text = json.dumps({"instances": ["A gripping, beautifully acted film."]})
    print("\nTry it (another terminal):")
    print(f"  curl -s {base}/v1/models")
    print(
        f"  curl -s -X POST {base}/v1/models/breast-cancer:explain "
        f"-H 'Content-Type: application/json' -d '{tabular}'"
    )
    print(
        f"  curl -s -X POST {base}/v1/models/sentiment:explain "
        f"-H 'Content-Type: application/json' -d '{text}'"
    )
    print(
        f"  curl -s -X POST '{base}/v1/models/breast-cancer-mlp:explain?format=png' "
        f"-H 'Content-Type: application/json' -d '{tabular}' -o explanation.png"
    )
    print(f"  open {base}/docs for the API reference\n")
