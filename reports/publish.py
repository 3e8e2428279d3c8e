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
