"""Building explainers: registry tags and aliases, signature, charts, and the CLI contract."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.models import Model
from mlflow.tracking import MlflowClient

EAAS = str(Path(sys.executable).with_name("eaas"))


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EAAS, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_tags_alias_and_back_pointer(built):
    client = MlflowClient()
    ev = client.get_model_version_by_alias("tiny-xgb-explainer", "champion")
    assert f"models:/tiny-xgb-explainer/{ev.version}" == built["tiny-xgb"]
    assert ev.tags["eaas.source_model"] == "tiny-xgb"
    assert ev.tags["eaas.source_version"] == "1"
    assert ev.tags["eaas.method"] == "tree"
    assert ev.tags["eaas.output_space"] == "log_odds"
    assert client.get_model_version("tiny-xgb", "1").tags["eaas.explainer"] == built["tiny-xgb"]
    names = ("tiny-logistic", "tiny-mlp", "tiny-bert")
    tags = {n: client.get_model_version_by_alias(f"{n}-explainer", "champion").tags for n in names}
    methods = {n: t["eaas.method"] for n, t in tags.items()}
    assert methods == {"tiny-logistic": "linear", "tiny-mlp": "permutation",
                       "tiny-bert": "text-permutation"}
    spaces = {n: tags[n]["eaas.output_space"] for n in ("tiny-mlp", "tiny-bert")}
    assert spaces == {"tiny-mlp": "probability", "tiny-bert": "probability"}


def test_signature_is_typed_for_spark_and_charts_are_logged(built):
    client = MlflowClient()
    for name, data_type in (("tiny-xgb", "double"), ("tiny-bert", "string")):
        mv = client.get_model_version_by_alias(f"{name}-explainer", "champion")
        info = mlflow.models.get_model_info(built[name])
        outputs = {c["name"]: c for c in info.signature.outputs.to_dict()}
        assert list(outputs) == [
            "output_names",
            "prediction",
            "base_values",
            "values",
            "features",
            "data",
            "additivity_error",
            "approximation_error",
            "tolerance_met",
            "truncated",
        ]
        assert outputs["truncated"]["type"] == "boolean"
        assert outputs["values"]["items"] == {"type": "array", "items": {"type": "double"}}
        assert outputs["data"]["items"]["type"] == data_type
        params = {p.name for p in info.signature.params.params}
        assert params == (
            {"max_evals", "seed", "tolerance", "long_text"} if name == "tiny-bert"
            else {"max_evals", "seed", "tolerance"}
        )
        charts = {a.path for a in client.list_artifacts(mv.run_id, "charts")}
        assert {
            "charts/global_importance_positive.png"
            if name == "tiny-bert"
            else "charts/global_importance_1.png",
            "charts/example_0.png",
        } <= charts
        png = mlflow.artifacts.load_image(f"runs:/{mv.run_id}/charts/example_0.png")
        assert png.size[0] > 400 and png.size[1] > 150


def test_explainer_is_models_from_code_with_bundled_source(built):
    local = mlflow.artifacts.download_artifacts(built["tiny-mlp"])
    meta = Model.load(local)
    pyfunc = meta.flavors["python_function"]
    assert pyfunc.get("model_code_path", "").endswith("explainer_model.py")
    assert "python_model.pkl" not in os.listdir(local)  # no cloudpickled wrapper
    arts = Path(local, "artifacts")
    assert {"source_model", "config.json", "background.parquet"} <= set(os.listdir(arts))
    assert Model.load(str(arts / "source_model")).flavors.get("sklearn")


def test_cli_build_prints_the_uri_last(models):
    res = _cli("explainer", "build", "--model", "models:/tiny-lgbm/1", "--name", "lgbm-cli")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "models:/lgbm-cli/1"
    mv = MlflowClient().get_model_version("lgbm-cli", "1")
    assert mv.tags["eaas.method"] == "tree"
    assert not MlflowClient().get_model_version("lgbm-cli", "1").aliases  # given by version


def test_cli_bad_inputs_fail_with_one_clear_line(models):
    cases = {
        ("--model", "models:/no-such-model/1"): "not registered",
        ("--model", "runs:/abc/model"): "models:/NAME/VERSION",
        ("--model", "models:/tiny-mlp/1", "--method", "tree"): "tree ensemble",
        ("--model", "models:/tiny-bert/1", "--method", "permutation"): "apply to a text model",
        ("--model", "models:/tiny-xgb/1", "--method", "text"): "does not apply",
        ("--model", "models:/tiny-mlp-nobg/1"): "needs background",
        ("--model", "models:/tiny-mlp/1", "--background", "/nonexistent.csv"): "no such file",
        ("--model", "models:/tiny-mlp/1", "--method", "magic"): "unknown 'magic'",
    }
    from typer.testing import CliRunner

    from eaas.cli import app

    runner = CliRunner()  # in-process: the same typer app, without a process start per case
    for args, reason in cases.items():
        res = runner.invoke(app, ["explainer", "build", *args])
        assert res.exit_code == 2, (args, res.output)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0], lines
        assert res.exception is None or isinstance(res.exception, SystemExit)
    real = _cli("explainer", "build", "--model", "models:/no-such-model@champion")
    assert real.returncode == 2 and "Traceback" not in real.stderr
    assert real.stderr.strip().splitlines()[-1].startswith("error: model 'no-such-model@champion'")


def test_background_file_is_used(models, tmp_path):
    from eaas.explain.build import build_explainer

    path = tmp_path / "bg.csv"
    models.x.tail(30).to_csv(path, index=False)
    res = build_explainer(
        "models:/tiny-mlp-nobg/1", background=str(path), background_size=12, max_evals=32
    )
    assert res.method == "permutation" and len(res.engine.method.background) == 12
    assert res.engine.config.background_rows == 12


def test_embedded_registry_lives_under_eaas_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["EAAS_HOME"] = str(tmp_path / "home")
    code = (
        "from explain.registry import configure, use_experiment; import mlflow; configure();"
        "use_experiment('x'); print(mlflow.get_tracking_uri());"
        "print(mlflow.get_experiment_by_name('x').artifact_location)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert out[0] == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert out[1].startswith((tmp_path / "home" / "artifacts").as_uri())
    assert (tmp_path / "home" / "mlflow.db").exists()


def test_resolve_explainer_from_source_alias_version_or_explainer_name(built, models):
    import mlflow.sklearn

    from eaas.explain.errors import NotFound
    from eaas.explain.registry import resolve_explainer
    from tests import fixtures as fx

    fx.register(
        "no-explainer",
        mlflow.sklearn.log_model,
        models.logistic,
        None,
        skops_trusted_types=fx.skops_types(models.logistic),
    )

    by_alias = resolve_explainer("tiny-xgb@champion")
    assert by_alias.explainer_uri == built["tiny-xgb"] and str(by_alias.source.version) == "1"
    assert resolve_explainer("tiny-xgb/1").explainer_uri == built["tiny-xgb"]
    by_explainer = resolve_explainer("tiny-xgb-explainer@champion")
    assert by_explainer.source.name == "tiny-xgb" and str(by_explainer.source.version) == "1"
    for bad in ("no-explainer", "nope@champion", "tiny-xgb/99"):
        with pytest.raises(NotFound):
            resolve_explainer(bad)
