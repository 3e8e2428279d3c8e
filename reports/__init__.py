"""Reports: global importance, plots and a self-contained HTML report of a model version's
explanations, logged to MLflow and attached to the registered model version under review."""

from eaas.reports.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
