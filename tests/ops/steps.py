"""Client-side steps of the MLflow-server test, run as `python -m tests.ops.steps STEP DIR`.

Each runs in its own process with MLFLOW_TRACKING_URI=http://... from the environment, as a user's
script would: the test process itself never points MLflow anywhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def register(d: Path) -> None:
    """Train and register a tiny xgboost (alias champion); write the rows to explain."""
    import mlflow.xgboost
    from mlflow.tracking import MlflowClient

    from tests import fixtures as fx

    x, y = fx.tabular_data()
    version = fx.register("srv-xgb", mlflow.xgboost.log_model, fx.train_xgboost(x, y), x.head(20))
    client = MlflowClient()
    client.set_registered_model_alias("srv-xgb", "champion", version)
    rows = x.head(12).reset_index(drop=True)
    rows.insert(0, "id", np.arange(len(rows), dtype=np.int64))
    rows.to_parquet(d / "rows.parquet", index=False)
    run_id = client.get_model_version("srv-xgb", version).run_id
    (d / "artifact_uri.txt").write_text(client.get_run(run_id).info.artifact_uri)


def predict(d: Path) -> None:
    """The explainer pyfunc, loaded through the server, on the same rows: the reference."""
    import mlflow.pyfunc

    rows = pd.read_parquet(d / "rows.parquet")
    out = mlflow.pyfunc.load_model("models:/srv-xgb-explainer/1").predict(rows.drop(columns="id"))
    ref = {"values": [np.asarray(v).tolist() for v in out["values"]],
           "base_values": [list(v) for v in out["base_values"]]}  # fmt: skip
    (d / "pyfunc.json").write_text(json.dumps(ref))


if __name__ == "__main__":
    {"register": register, "predict": predict}[sys.argv[1]](Path(sys.argv[2]))
