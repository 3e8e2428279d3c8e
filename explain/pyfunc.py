"""The explainer as an MLflow pyfunc: rebuilt at load time from the bundled artifacts.

Artifacts: `source_model` (the exact source model version's MLflow folder), `background`
(Parquet, may be absent for text and tree), `config` (JSON). No shap object is pickled.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import mlflow.pyfunc
import pandas as pd

from eaas.explain.engine import Engine, ExplainerConfig
from eaas.explain.source import load_source


def pin_threads(n: int) -> None:
    """One numeric thread per worker by default: oversubscribed cores ran up to 15x slower."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # torch is a dependency, but a tabular worker need not pay for it
        pass


def load_engine(source_dir: str, config: dict[str, Any], background: str | None) -> Engine:
    from eaas.explain.settings import core_settings

    pin_threads(core_settings().num_threads)
    bg = pd.read_parquet(background) if background and os.path.exists(background) else None
    return Engine(load_source(source_dir), config["method"], bg, config)


# Python 3.11 specialises a function's bytecode only after it has run several times: one
# warm-up call left the first request ~1.6x slower than the next ones (tree, one row)
WARM_CALLS = 10
WARM_BUDGET_S = 0.5  # a slow method (sampled, text) stops repeating after this


def warm_up(engine: Engine) -> None:
    """Pay numba/torch first-call costs at load time, not on the first request."""
    cfg = engine.config
    if cfg.kind == "text":
        engine.explain(pd.DataFrame({"text": ["warm up"]}), {"max_evals": 8})
    elif engine.source.input_example is not None and len(engine.source.input_example):
        # the configured budget, not a minimal one: the first request then finds its array
        # sizes, the model's code paths and the numba kernels (tree) already warm
        evals = max(cfg.max_evals, 2 * len(cfg.features) + 1)
        example = engine.source.input_example.head(1)
        engine.explain(example, {"max_evals": evals})
        # a client's frame has pandas' default string column labels, unlike the logged example
        # read back by MLflow: warm that path, repeatedly while it is cheap
        fresh = pd.DataFrame({str(c): example[c].to_numpy() for c in example.columns})
        deadline = time.monotonic() + WARM_BUDGET_S
        for _ in range(WARM_CALLS):
            engine.explain(fresh, {"max_evals": evals})
            if time.monotonic() > deadline:
                break


class ExplainerModel(mlflow.pyfunc.PythonModel):
    """predict(DataFrame) -> one typed Explanation row per input row."""

    engine: Engine

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        with open(context.artifacts["config"]) as fh:
            config = json.load(fh)
        self.engine = load_engine(
            context.artifacts["source_model"], config, context.artifacts.get("background")
        )
        warm_up(self.engine)
        # MLflow reads predict()'s type hints on the first call (an eval per hint): now instead
        getattr(self, "predict_type_hints", None)

    @property
    def config(self) -> ExplainerConfig:
        return self.engine.config

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        params = {k: v for k, v in (params or {}).items() if v is not None}
        return self.engine.explain(model_input, params)
