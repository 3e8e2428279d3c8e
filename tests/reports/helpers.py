"""Batch-output-shaped Parquet written from the explainer pyfunc itself (not from batch/)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from eaas.explain.schema import COLUMNS
from tests import fixtures as fx

ERROR_REASON = "f3: missing value (NaN) and the model cannot take it"
TEXT_ERROR = "text: longer than 5000 chars"


def _with_status(keys: pd.DataFrame, explained: pd.DataFrame, bad: int, reason: str):
    """Key columns + Explanation columns + status/error; row `bad` is an error row (nulls)."""
    rows = explained.astype(object).copy()
    rows.loc[bad, COLUMNS] = None
    out = pd.concat([keys.reset_index(drop=True), rows], axis=1)
    out["status"] = ["error" if i == bad else "ok" for i in range(len(out))]
    out["error"] = [reason if i == bad else None for i in range(len(out))]
    return out


def tabular_explanations(uri: str, folder: Path, n: int = 40, seed: int = 5) -> Path:
    """A Parquet folder of two part files, like a Spark job writes."""
    x, _ = fx.tabular_data(n=n, seed=seed)
    out = mlflow.pyfunc.load_model(uri).predict(x)
    keys = pd.concat([pd.DataFrame({"id": np.arange(n, dtype=np.int64)}), x], axis=1)
    frame = _with_status(keys, out, bad=3, reason=ERROR_REASON)
    folder.mkdir(parents=True, exist_ok=True)
    half = n // 2
    frame.iloc[:half].to_parquet(folder / "part-00000.parquet", index=False)
    frame.iloc[half:].to_parquet(folder / "part-00001.parquet", index=False)
    return folder


def text_explanations(uri: str, path: Path, n: int = 10, seed: int = 3) -> Path:
    texts, _ = fx.text_data(n=n, seed=seed)
    out = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"text": texts}))
    keys = pd.DataFrame({"id": np.arange(n, dtype=np.int64), "text": texts})
    _with_status(keys, out, bad=1, reason=TEXT_ERROR).to_parquet(path, index=False)
    return path


def mean_abs(path: Path) -> dict[str, dict[str, float]]:
    """Mean |value| per feature/token per output over ok rows, recomputed independently.

    A token absent from a row counts 0 there; a repeated token adds up within its row.
    """
    df = pd.read_parquet(path)
    ok = df[df["status"] == "ok"]
    outputs = list(ok["output_names"].iloc[0])
    out: dict[str, dict[str, float]] = {}
    for o, name in enumerate(outputs):
        sums: dict[str, float] = {}
        for feats, vals in zip(ok["features"], ok["values"], strict=True):
            for f, v in zip(feats, np.abs(np.stack(vals)[o]), strict=True):
                sums[f] = sums.get(f, 0.0) + float(v)
        out[name] = {f: s / len(ok) for f, s in sums.items()}
    return out
