"""A Spark Python worker killed mid-job: Spark retries the task, the output is still one row per id.

The model is a pyfunc whose first call inside a Spark worker SIGKILLs its own process: a trigger
file is claimed by an atomic rename, so exactly one attempt dies, wherever it runs. The job runs
as `eaas batch` in its own process, on `local[2,4]` (local mode retries a task only when the
master names a failure count).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import cloudpickle
import mlflow.pyfunc
import numpy as np
import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from tests import fixtures as fx
from tests.batch.conftest import tabular_rows
from tests.batch.test_cli import eaas, summary


class KillOnce(mlflow.pyfunc.PythonModel):
    """A smooth score of the features; dies once (SIGKILL) if the trigger file is there."""

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger

    def predict(self, context, model_input, params=None):  # noqa: ARG002 - pyfunc signature
        try:
            os.rename(self.trigger, self.trigger + ".claimed")  # only one process wins
        except OSError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
        x = np.asarray(model_input, dtype=float)
        return 1.0 / (1.0 + np.exp(-(x[:, 0] - 0.5 * x[:, 1] + 0.2 * x[:, 2] * x[:, 3])))


def _register_kill_once(trigger: Path) -> None:
    x, _ = fx.tabular_data(n=60)
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # workers need not import the tests package
    try:
        with mlflow.start_run(run_name="kill-once"):
            mlflow.pyfunc.log_model(
                name="model", python_model=KillOnce(str(trigger)), input_example=x.head(20),
                registered_model_name="kill-once", pip_requirements=fx.PIP,
            )  # fmt: skip
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    MlflowClient().set_registered_model_alias("kill-once", "champion", "1")


def test_killed_python_worker_is_retried_and_no_row_is_lost_or_doubled(registry, tmp_path):
    from eaas.explain.build import build_explainer

    trigger = tmp_path / "kill-trigger"
    _register_kill_once(trigger)
    build_explainer("models:/kill-once@champion", max_evals=24, background_size=10)
    n = 40
    tabular_rows(n, seed=4).to_parquet(tmp_path / "in.parquet", index=False)
    trigger.touch()  # armed only now: building the explainer above called the model too
    out = tmp_path / "out"
    r = eaas(
        "batch", "--model", "kill-once@champion", "--input", str(tmp_path / "in.parquet"),
        "--output", str(out), "--id-cols", "id", "--master", "local[2,4]", "--partitions", "4",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert not trigger.exists() and (tmp_path / "kill-trigger.claimed").exists()  # one died
    assert "Python worker exited unexpectedly" in r.stderr  # Spark saw the crash and retried
    assert summary(r.stdout)[:3] == (n, n, 0)
    ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == list(range(n))  # each id exactly once
