"""Where every number in a report came from: model, explainer, config, libraries, input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from eaas.explain.build import library_versions
from eaas.explain.config import ExplainerConfig
from eaas.explain.errors import NotFound
from eaas.explain.registry import ExplainerTarget
from eaas.reports.inputs import ReportInput


def explainer_config(target: ExplainerTarget) -> ExplainerConfig:
    """The config stored in the explainer's MLmodel metadata (no model download needed)."""
    info = mlflow.models.get_model_info(target.explainer_uri)
    cfg = (info.metadata or {}).get("eaas")
    if not cfg:
        raise NotFound(f"explainer '{target.explainer_uri}' has no eaas config in its metadata")
    return ExplainerConfig.from_dict(cfg)


def aliases_of(client: MlflowClient, name: str, version: str) -> list[str]:
    # search results carry no aliases in every store; the registered model does
    rm = client.get_registered_model(name)
    return sorted(a for a, v in rm.aliases.items() if str(v) == str(version))


def provenance(
    target: ExplainerTarget, cfg: ExplainerConfig, inp: ReportInput, run_id: str
) -> dict[str, Any]:
    """One JSON-able dict; the HTML shows it as tables and logs it as `provenance.json`."""
    client = MlflowClient()
    src, exp = target.source, target.explainer
    return {
        "model": {
            "name": src.name,
            "version": str(src.version),
            "aliases": aliases_of(client, src.name, str(src.version)),
            "run_id": src.run_id,
        },
        "explainer": {
            "name": exp.name,
            "version": str(exp.version),
            "uri": target.explainer_uri,
            "run_id": exp.run_id,
            "method": cfg.method,
            "params": cfg.params,
            "seed": cfg.seed,
            "output_space": cfg.output_space,
            "kind": cfg.kind,
            "background_rows": cfg.background_rows,
            "library_versions": dict(cfg.versions),
        },
        "input": {
            "path": inp.path,
            "mode": inp.mode,
            "rows": len(inp.frame),
            "explained_rows": len(inp.ok),
            "errors": inp.error_summary(),
        },
        "report": {
            "run_id": run_id,
            "created_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "library_versions": library_versions(),
        },
    }
