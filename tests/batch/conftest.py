"""One local[2] SparkSession for the batch tests, and small input tables."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from tests import fixtures as fx


@pytest.fixture(scope="session")
def spark(registry):
    """Started the way the job starts it (PYSPARK_PYTHON, executor env); stopped at the end."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from eaas.batch.session import start_session

    session, ours = start_session(
        "local[2]", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    )
    yield session
    if ours:
        session.stop()


def tabular_rows(n: int = 24, seed: int = 1) -> pd.DataFrame:
    """An `id` key column plus the fixture models' features f0..f4."""
    x, _ = fx.tabular_data(n=n, seed=seed)
    return pd.concat([pd.DataFrame({"id": np.arange(n, dtype=np.int64)}), x], axis=1)


def by_id(rows: list) -> dict:
    return {r["id"]: r for r in rows}
