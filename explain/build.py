"""Build an explainer for a registered model version, log it as a pyfunc and register it."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from eaas.explain import plots
from eaas.explain.config import ExplainerConfig
from eaas.explain.engine import Engine
from eaas.explain.errors import BadRequest, InvalidInput, MissingBackground
from eaas.explain.inputs import InputRule, rule_for
from eaas.explain.methods import choose
from eaas.explain.quiet import quiet_notices
from eaas.explain.registry import ModelRef, parse_model_uri, resolve_version, use_experiment
from eaas.explain.schema import signature
from eaas.explain.settings import CoreSettings
from eaas.explain.source import SourceModel, load_source
from eaas.explain.validation import check_params, default_params

log = logging.getLogger(__name__)
EXPERIMENT = "eaas-explainers"
CODE_FILE = Path(__file__).with_name("explainer_model.py")
PACKAGES = (
    "mlflow",
    "shap",
    "scikit-learn",
    "xgboost-cpu",
    "lightgbm",
    "torch",
    "transformers",
    "captum",
    "pandas",
    "pyarrow",
    "numpy",
    "matplotlib",
    "pydantic-settings",
)
N_EXAMPLES = 3


@dataclass
class BuildResult:
    name: str
    version: str
    method: str
    output_space: str
    run_id: str
    engine: Engine | None = field(default=None, repr=False, compare=False)  # the in-process twin

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def library_versions() -> dict[str, str]:
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def read_table(path: str | Path, field: str = "background") -> pd.DataFrame:
    """Parquet or CSV, by extension (a folder is read as Parquet); `field` names it in errors."""
    p = Path(path)
    if not p.exists():
        raise BadRequest(f"{field}: no such file '{p.name}'", field=field)
    if p.suffix.lower() == ".csv":
        return pd.read_csv(p)
    return pd.read_parquet(p)


def select_background(
    source: SourceModel, rule: InputRule, background: str | Path | pd.DataFrame | None,
    size: int, seed: int,
) -> pd.DataFrame | None:
    """The model's input columns from the given table, else its logged example; sampled."""
    df = read_table(background) if isinstance(background, (str, Path)) else background
    if df is None:
        df = source.input_example
    if df is None:
        return None
    cols = source.feature_names
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InvalidInput(f"background: missing column '{missing[0]}'", field="background")
    df = df[cols].dropna() if rule.background_is_data else df[cols]
    if len(df) > size:
        df = df.sample(n=size, random_state=seed)
    return df.reset_index(drop=True)


def build_explainer(
    model_uri: str,
    method: str = "auto",
    background: str | Path | pd.DataFrame | None = None,
    background_size: int = 100,
    max_evals: int | None = None,
    seed: int | None = None,
    name: str | None = None,
    long_text: str | None = None,
    settings: CoreSettings | None = None,
    tolerance: float | None = None,
) -> BuildResult:
    """The Python API behind `eaas explainer build` (settings: the environment's if None)."""
    settings = settings or CoreSettings()
    given = {"max_evals": max_evals, "seed": seed, "long_text": long_text,
             "tolerance": tolerance}
    p = check_params(given, default_params(settings))  # the same rule requests are held to
    if background_size < 1:
        raise BadRequest("background-size: must be at least 1", field="background_size")
    ref = parse_model_uri(model_uri)
    mv = resolve_version(ref)
    client = MlflowClient()
    with tempfile.TemporaryDirectory(prefix="eaas-build-") as tmp:
        dst = Path(tmp, "source_model")
        dst.mkdir()
        src_dir = download_artifacts(
            artifact_uri=f"models:/{mv.name}/{mv.version}", dst_path=str(dst)
        )
        source = load_source(src_dir, settings)
        method = choose(source, method)
        rule = rule_for(source.kind, source.feature_names, source.accepts_nan)
        bg = _background(source, rule, background, background_size, p.seed)
        config = {
            "max_evals": p.max_evals,
            "seed": p.seed,
            "long_text": p.long_text,
            "tolerance": p.tolerance,
            "source_name": mv.name,
            "source_version": str(mv.version),
            "versions": library_versions(),
            "background_rows": 0 if bg is None else len(bg),
        }
        engine = Engine(source, method, bg if rule.background_is_data else None, config)
        result = _log_and_register(engine, src_dir, bg, name or f"{mv.name}-explainer", Path(tmp))
    _tag(client, ref, mv.version, result)
    result.engine = engine
    return result


def _background(
    source: SourceModel, rule: InputRule, background: str | Path | pd.DataFrame | None,
    size: int, seed: int,
) -> pd.DataFrame | None:
    """The background (or, for text, the examples its charts need); the engine refuses a
    model whose inputs it cannot take, in one line."""
    bg = select_background(source, rule, background, size, seed)
    if not rule.background_is_data and (bg is None or len(bg) == 0):
        cols = ", ".join(f"'{c}'" for c in source.feature_names)
        raise MissingBackground(
            f"background: a {source.kind} explainer needs examples for its charts and the "
            f"model has no input example; pass --background PATH (CSV or Parquet with "
            f"column {cols})",
            field="background",
        )
    return bg


def _log_and_register(
    engine: Engine, src_dir: str, bg: pd.DataFrame | None, name: str, tmp: Path
) -> BuildResult:
    cfg = engine.config
    (tmp / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    artifacts = {"source_model": src_dir, "config": str(tmp / "config.json")}
    if bg is not None and engine.inputs.background_is_data:
        bg.to_parquet(tmp / "background.parquet", index=False)
        artifacts["background"] = str(tmp / "background.parquet")
    use_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(
            {
                "method": cfg.method,
                "source_model": cfg.source_name,
                "source_version": cfg.source_version,
                "max_evals": cfg.max_evals,
                "seed": cfg.seed,
                "long_text": cfg.long_text,
                "tolerance": cfg.tolerance,
                "output_space": cfg.output_space,
                "background_rows": cfg.background_rows,
            }
        )
        _log_charts(engine, bg)
        with quiet_notices():
            info = _log_model(cfg, engine.inputs, artifacts, name)
    return BuildResult(
        name, str(info.registered_model_version), cfg.method, cfg.output_space, run.info.run_id
    )


def _log_model(cfg: ExplainerConfig, rule: InputRule, artifacts: dict, name: str) -> Any:
    return mlflow.pyfunc.log_model(
        name="explainer",
        python_model=str(CODE_FILE),
        artifacts=artifacts,
        signature=signature(rule.data_type, rule.params, cfg.defaults),
        pip_requirements=[f"{k}=={v}" for k, v in cfg.versions.items()],
        metadata={"eaas": cfg.to_dict()},
        registered_model_name=name,
    )


def _log_charts(engine: Engine, bg: pd.DataFrame | None) -> None:
    """Global mean |SHAP| per output over the background sample, and a few examples."""
    if bg is None or len(bg) == 0:
        log.warning("no background or example data: bar charts are not logged")
        return
    cfg = engine.config
    if engine.inputs.chart_rows is not None:
        bg = bg.head(engine.inputs.chart_rows)
    frame = engine.explain(bg)
    mlflow.log_metric("max_additivity_error", float(frame["additivity_error"].max()))
    title = f"{cfg.source_name} v{cfg.source_version} · {cfg.method} explainer"
    for output, imp in plots.global_importance(frame).items():
        fig = plots.global_bar(imp, output, cfg.output_space, title)
        mlflow.log_figure(fig, f"charts/global_importance_{_slug(output)}.png")
        plots.close(fig)
    for i in range(min(N_EXAMPLES, len(frame))):
        fig = plots.instance_bar(frame.iloc[i], title=f"{title} · example {i}")
        mlflow.log_figure(fig, f"charts/example_{i}.png")
        plots.close(fig)


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s)


def _tag(client: MlflowClient, ref: ModelRef, source_version: str, result: BuildResult) -> None:
    cfg_tags = {
        "eaas.source_model": ref.name,
        "eaas.source_version": str(source_version),
        "eaas.method": result.method,
        "eaas.output_space": result.output_space,
    }
    for k, v in cfg_tags.items():
        client.set_model_version_tag(result.name, result.version, k, v)
    client.set_model_version_tag(ref.name, source_version, "eaas.explainer", result.uri)
    if ref.alias:
        client.set_registered_model_alias(result.name, ref.alias, result.version)
