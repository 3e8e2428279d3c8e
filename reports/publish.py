"""Attach a logged report to the model version under review: tags plus a description line."""

from __future__ import annotations

from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

EXPERIMENT = "eaas-reports"
TAG_RUN = "eaas.report_run_id"
TAG_URI = "eaas.report_uri"


def attach(client: MlflowClient, mv: ModelVersion, run_id: str, report_uri: str) -> None:
    """Newest report wins the tags; the description keeps its text and gains one line per report.

    Older report runs are left alone: the description lines still point at them.
    """
    client.set_model_version_tag(mv.name, mv.version, TAG_RUN, run_id)
    client.set_model_version_tag(mv.name, mv.version, TAG_URI, report_uri)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    line = f"SHAP report ({when}, run {run_id}): {report_uri}"
    current = client.get_model_version(mv.name, mv.version).description or ""
    text = f"{current.rstrip()}\n\n{line}" if current.strip() else line
    client.update_model_version(mv.name, mv.version, description=text)


TAG_DRIFT_RUN = "eaas.drift_run_id"
TAG_DRIFT_NDCG = "eaas.drift_ndcg"
TAG_DRIFT_URI = "eaas.drift_uri"


def attach_drift(
    client: MlflowClient, mv: ModelVersion, run_id: str, report_uri: str, ndcg: float
) -> None:
    """As `attach`, for an attribution drift report (its NDCG in a tag and in the line)."""
    client.set_model_version_tag(mv.name, mv.version, TAG_DRIFT_RUN, run_id)
    client.set_model_version_tag(mv.name, mv.version, TAG_DRIFT_NDCG, f"{ndcg:.4f}")
    client.set_model_version_tag(mv.name, mv.version, TAG_DRIFT_URI, report_uri)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    line = f"Attribution drift ({when}, run {run_id}): NDCG {ndcg:.4f}, {report_uri}"
    current = client.get_model_version(mv.name, mv.version).description or ""
    text = f"{current.rstrip()}\n\n{line}" if current.strip() else line
    client.update_model_version(mv.name, mv.version, description=text)
