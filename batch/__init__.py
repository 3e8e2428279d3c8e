"""Batch explanations on Spark: `eaas batch` and `batch.explain_dataframe` (docs/batch.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["explain_dataframe", "run_job"]


def __getattr__(name: str) -> Any:
    """Lazy: Spark workers import `batch.worker` without paying for PySpark's driver side."""
    if name == "explain_dataframe":
        from eaas.batch.frame import explain_dataframe

        return explain_dataframe
    if name == "run_job":
        from eaas.batch.job import run_job

        return run_job
    raise AttributeError(name)
