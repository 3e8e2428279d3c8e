"""Start (or join) the Spark session of a batch job, with what Python workers need set up."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

from eaas.batch.worker import THREAD_VARS
from eaas.explain.registry import tracking_uri
from eaas.explain.settings import CoreSettings


def under_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands the driver its port: the master is set there."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def worker_env(settings: CoreSettings) -> dict[str, str]:
    """Environment of executors' Python workers: pinned threads and the same MLflow registry."""
    n = str(settings.num_threads)
    env = {var: n for var in THREAD_VARS}
    env["MLFLOW_TRACKING_URI"] = tracking_uri(settings)
    for var in ("MLFLOW_REGISTRY_URI", "EAAS_HOME", "EAAS_TRUST_REGISTRY", "HF_HUB_OFFLINE"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    return env


def session_conf(
    master: str | None, conf: Mapping[str, str] | None = None,
    settings: CoreSettings | None = None,
) -> dict[str, str]:
    out = {
        "spark.app.name": "eaas-batch",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.python.worker.reuse": "true",  # keeps the per-process explainer cache alive
        "spark.ui.showConsoleProgress": "false",  # the job prints a line per stage instead
    }
    env = worker_env(settings or CoreSettings())
    out.update({f"spark.executorEnv.{k}": v for k, v in env.items()})
    if master is None and not under_spark_submit():
        master = "local[*]"
    if master:
        out["spark.master"] = master
    if master and master.startswith("local"):
        # embedded engine: nothing listens beyond loopback, no web UI unless asked for
        out.update(
            {
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.ui.enabled": "false",
            }
        )
    out.update(conf or {})
    return out


def start_session(
    master: str | None = None, conf: Mapping[str, str] | None = None,
    settings: CoreSettings | None = None,
) -> tuple[SparkSession, bool]:
    """The active session if there is one (not ours to stop), else a new one (ours to stop)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    # Spark's Python workers otherwise start the system python3 (no pandas there)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder
    for k, v in session_conf(master, conf, settings).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("EAAS_SPARK_LOG_LEVEL", "WARN"))
    return spark, True
