"""`run_drift`: attribution drift of a model between two datasets, or between two versions.

Each side is batch output of `eaas batch` (recognised by its Explanation columns) or raw
Parquet/CSV explained now (a sample). With `baseline_model`, the baseline side is the other
version's explainer on the baseline data, or on the current rows themselves when no baseline
data is given (champion against challenger). The report is logged to MLflow and attached to
the current model version (tags `eaas.drift_run_id`, `eaas.drift_ndcg`, a description line).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.parquet as pq

from eaas.explain.errors import BadRequest, InvalidInput
from eaas.explain.pyfunc import load_explainer
from eaas.explain.registry import ExplainerTarget, configure, resolve_explainer, use_experiment
from eaas.explain.schema import REQUIRED
from eaas.explain.settings import CoreSettings
from eaas.reports.drift_html import write_files
from eaas.reports.drift_stats import TOP_K, drift_tables
from eaas.reports.inputs import (
    ReportInput,
    explain_data,
    explain_rows,
    model_inputs,
    read_explanations,
    sample_rows,
)
from eaas.reports.provenance import explainer_config
from eaas.reports.publish import attach_drift

EXPERIMENT = "eaas-drift"


@dataclass
class DriftResult:
    run_id: str
    report_uri: str
    output_dir: Path
    ndcg: float
    ndcg_by_output: dict[str, float]
    movers: dict[str, list[str]]  # per output, features by size of the move
    significant: list[str]

    @property
    def report_path(self) -> Path:
        return self.output_dir / "drift.html"

    def summary(self) -> str:
        sig = ", ".join(self.significant[:10]) or "none"
        return f"ndcg={self.ndcg:.4f} significant={sig} run_id={self.run_id}"


def is_batch_output(path: Path) -> bool:
    """A Parquet file or folder carrying the Explanation columns and `status`."""
    try:
        names = set(pq.ParquetDataset(str(path)).schema.names)
    except Exception:  # CSV, or not Parquet at all: raw data (its reader reports problems)
        return False
    return all(c in names for c in [*REQUIRED, "status"])


def load_side(path: str | Path, target: ExplainerTarget, sample: int) -> ReportInput:
    cfg = explainer_config(target)
    p = Path(path).expanduser()
    if p.exists() and is_batch_output(p):
        return read_explanations(p, cfg)
    return explain_data(p, target.explainer_uri, cfg, sample)


def _same_rows(cur: ReportInput, other: ExplainerTarget, sample: int) -> tuple:
    """The current rows (a sample) explained by another version's explainer: both sides."""
    cfg = explainer_config(other)
    rows = sample_rows(cur.ok, sample, cfg.seed)
    out = explain_rows(load_explainer(other.explainer_uri), model_inputs(rows, cfg))
    keys = model_inputs(rows, cfg)
    base = ReportInput(pd.concat([keys, out], axis=1), cur.path, "data")
    if base.ok.empty:
        raise InvalidInput(f"baseline_model: explained none of the rows ({out['error'].iloc[0]})")
    return ReportInput(rows.assign(status="ok"), cur.path, cur.mode), base


def run_drift(
    model: str,
    current: str | Path,
    baseline: str | Path | None = None,
    baseline_model: str | None = None,
    output: str | Path | None = None,
    sample: int = 500,
    top_k: int = TOP_K,
) -> DriftResult:
    """Compare attributions of `current` against `baseline` (data or model version)."""
    if baseline is None and baseline_model is None:
        raise BadRequest("give --baseline PATH, --baseline-model NAME/VERSION, or both")
    if sample < 2 or top_k < 1:
        raise BadRequest("sample: at least 2; top_k: at least 1", field="sample")
    client = configure()
    target = resolve_explainer(model, client)
    btarget = resolve_explainer(baseline_model, client) if baseline_model else target
    cfg, bcfg = explainer_config(target), explainer_config(btarget)
    for what in ("kind", "output_names", "output_space"):  # else the numbers do not compare
        if getattr(bcfg, what) != getattr(cfg, what):
            raise BadRequest(
                f"baseline_model: not the same {what} ({getattr(bcfg, what)} vs "
                f"{getattr(cfg, what)})",
                field="baseline_model",
            )
    cur = load_side(current, target, sample)
    if baseline is None:
        cur, base = _same_rows(cur, btarget, sample)
    else:
        base = load_side(baseline, btarget, sample)
    tables, scores = drift_tables(
        base.ok, cur.ok, list(cfg.output_names), cfg.inputs.fixed_features, top_k
    )
    labels = _labels(target, btarget, current, baseline)
    out_dir = _output_dir(output, target)
    use_experiment(EXPERIMENT)
    src = target.source
    with mlflow.start_run(run_name=f"drift {src.name} v{src.version}") as run:
        prov = _provenance(target, btarget, cur, base, run.info.run_id, top_k)
        write_files(out_dir, f"Attribution drift · {src.name} v{src.version}", labels, tables,
                    scores, prov)  # fmt: skip
        ndcg = min(scores.values())
        mlflow.set_tags({"eaas.model": src.name, "eaas.model_version": str(src.version)})
        mlflow.log_params({"baseline": str(baseline or "")[-250:], "current": str(current)[-250:],
                           "baseline_model": baseline_model or "", "top_k": top_k})  # fmt: skip
        mlflow.log_metrics({"ndcg": ndcg, **{f"ndcg_{i}": v for i, v in
                                             enumerate(scores.values())}})  # fmt: skip
        mlflow.log_artifacts(str(out_dir))
        uri = mlflow.get_artifact_uri("drift.html")
    attach_drift(client, src, run.info.run_id, uri, ndcg)
    sig = sorted({f for t in tables.values() for f in t.loc[t["significant"], "feature"]})
    movers = {n: list(t["feature"]) for n, t in tables.items()}
    return DriftResult(run.info.run_id, uri, out_dir, ndcg, scores, movers, sig)


def _labels(target, btarget, current, baseline) -> tuple[str, str]:
    cur = f"{target.source.name} v{target.source.version} on {Path(str(current)).name}"
    data = Path(str(baseline)).name if baseline is not None else Path(str(current)).name
    return cur, f"{btarget.source.name} v{btarget.source.version} on {data}"


def _provenance(target, btarget, cur, base, run_id, top_k) -> dict:
    def side(t: ExplainerTarget, inp: ReportInput) -> dict:
        return {"model": f"{t.source.name}/{t.source.version}", "explainer": t.explainer_uri,
                "path": inp.path, "mode": inp.mode, "rows": len(inp.frame),
                "explained_rows": len(inp.ok)}  # fmt: skip

    return {
        "current": side(target, cur),
        "baseline": side(btarget, base),
        "test": "Mann-Whitney U (two-sided) on per-row |SHAP|, Benjamini-Hochberg q < 0.05",
        "ndcg": f"SageMaker Clarify definition, top {top_k} features, relevance = baseline",
        "run_id": run_id,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def _output_dir(output: str | Path | None, target: ExplainerTarget) -> Path:
    if output is not None:
        out = Path(output).expanduser()
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        out = (
            CoreSettings().home_dir
            / "drift"
            / f"{target.source.name}-{target.source.version}-{stamp}"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out
