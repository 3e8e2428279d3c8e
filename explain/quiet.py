"""Silence library notices that tell an eaas user nothing, where they arise (progress bars stay).

- MLflow's model-card and licence lookups on the Hugging Face hub for a local model;
- MLflow's "running model prediction to infer the signature" and input-example hints;
- transformers' load report when a fine-tuning run starts from an encoder without its head;
- PySpark's notice that it does not fully support pandas 3 (eaas's Spark path is tested on it).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

LOGGERS = (
    "mlflow.transformers",
    "mlflow.transformers.signature",
    "mlflow.models.model",
    "transformers.utils.loading_report",  # fine-tuning's expected "head newly initialized"
)
MESSAGES = (
    r".*An input example was not provided",
    r"Hint: Inferred schema contains integer",
    r"PySpark does not yet fully support pandas",
)


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextmanager
def quiet_notices() -> Iterator[None]:
    """Within the block: the loggers above show errors only; the warnings above are dropped."""
    drop = _Drop()
    loggers = [logging.getLogger(n) for n in LOGGERS]
    for lg in loggers:
        lg.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for msg in MESSAGES:
                warnings.filterwarnings("ignore", message=msg)
            yield
    finally:
        for lg in loggers:
            lg.removeFilter(drop)
