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

LOGGERS = ("mlflow.transformers", "mlflow.transformers.signature", "mlflow.models.model")
# fine-tuning starts from an encoder without its head: the "newly initialized" report is expected
REPORTS = {"transformers.modeling_utils": "LOAD REPORT"}
MESSAGES = (
    r".*An input example was not provided",
    r"Hint: Inferred schema contains integer",
    r"PySpark does not yet fully support pandas",
)


class _Drop(logging.Filter):
    def __init__(self, containing: str | None = None) -> None:
        super().__init__()
        self.containing = containing

    def filter(self, record: logging.LogRecord) -> bool:
        if self.containing is not None:  # drop only the matching records
            return self.containing not in record.getMessage()
        return record.levelno >= logging.ERROR


@contextmanager
def quiet_notices() -> Iterator[None]:
    """Within the block: the loggers above show errors only; the warnings above are dropped."""
    filters = [(logging.getLogger(n), _Drop()) for n in LOGGERS]
    filters += [(logging.getLogger(n), _Drop(text)) for n, text in REPORTS.items()]
    for lg, f in filters:
        lg.addFilter(f)
    try:
        with warnings.catch_warnings():
            for msg in MESSAGES:
                warnings.filterwarnings("ignore", message=msg)
            yield
    finally:
        for lg, f in filters:
            lg.removeFilter(f)
