"""A text explainer logs its charts from example texts, or does not build at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from tests import fixtures as fx

EAAS = str(Path(sys.executable).with_name("eaas"))


def _register_without_example(models) -> None:
    import mlflow.transformers

    with mlflow.start_run(run_name="tiny-bert-noex"):
        mlflow.transformers.log_model(
            transformers_model={"model": models.bert, "tokenizer": models.tokenizer},
            name="model",
            task="text-classification",
            registered_model_name="tiny-bert-noex",
            pip_requirements=fx.PIP,
        )


def test_text_explainer_without_examples_fails_naming_background(models, tmp_path):
    _register_without_example(models)
    res = subprocess.run(
        [EAAS, "explainer", "build", "--model", "models:/tiny-bert-noex/1"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr[-2000:]
    assert lines[0].startswith("error: background:") and "--background" in lines[0]
    from eaas.explain.build import build_explainer

    path = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["a great film", "a dull plot", "the acting was bad"]}).to_csv(path)
    built = build_explainer(
        "models:/tiny-bert-noex/1", background=str(path), max_evals=40, name="noex-explainer"
    )
    run = MlflowClient().get_run(built.run_id)
    charts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "charts")}
    assert {"charts/example_0.png", "charts/global_importance_positive.png"} <= charts
    assert mlflow.get_run(built.run_id).data.metrics["max_additivity_error"] < 1e-6
