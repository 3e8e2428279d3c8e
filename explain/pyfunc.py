"""The explainer as an MLflow pyfunc: rebuilt at load time from the bundled artifacts.

Artifacts: `source_model` (the exact source model version's MLflow folder), `background`
(Parquet, may be absent for text and tree), `config` (JSON). No shap object is pickled.

`load_explainer(uri)` is the one way every adapter (service, Spark worker, reports, CLI) gets
the engine of a registered explainer.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextvars import ContextVar
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from eaas.explain.config import ExplainerConfig
from eaas.explain.engine import Engine
from eaas.explain.errors import UnsupportedModel
from eaas.explain.settings import CoreSettings
from eaas.explain.source import load_source

log = logging.getLogger(__name__)
_LOAD_SETTINGS: ContextVar[CoreSettings | None] = ContextVar("eaas_load_settings", default=None)


def pin_threads(n: int) -> None:
    """One numeric thread per worker by default: oversubscribed cores ran up to 15x slower."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # torch is a dependency, but a tabular worker need not pay for it
        pass


def load_explainer(uri: str, settings: CoreSettings | None = None) -> Engine:
    """The engine of the explainer at `uri` (a registered `models:/NAME-explainer/N`, resolved
    by the caller from a name, never taken from a request); loaded with the caller's settings
    (threads, trust, device) and warmed up."""
    log.info("loading explainer %s", uri)
    # MLflow calls load_context with no way to pass settings (model_config is refused for
    # models not logged with one, which includes every explainer logged so far): a context
    # variable hands them over for this call only
    token = _LOAD_SETTINGS.set(settings or CoreSettings())
    try:
        model = mlflow.pyfunc.load_model(uri)
    finally:
        _LOAD_SETTINGS.reset(token)
    engine = getattr(model.unwrap_python_model(), "engine", None)
    if not isinstance(engine, Engine):
        raise UnsupportedModel(f"model: '{uri}' is not an eaas explainer")
    return engine


def engine_from_artifacts(
    source_dir: str, config: dict[str, Any], background: str | None, settings: CoreSettings
) -> Engine:
    pin_threads(settings.num_threads)
    bg = pd.read_parquet(background) if background and os.path.exists(background) else None
    return Engine(load_source(source_dir, settings), config["method"], bg, config)


# Python 3.11 specialises a function's bytecode only after it has run several times: one
# warm-up call left the first request ~1.6x slower than the next ones (tree, one row)
WARM_CALLS = 10
WARM_BUDGET_S = 0.5  # a slow method (sampled, text) stops repeating after this


def warm_up(engine: Engine) -> None:
    """Pay numba/torch first-call costs at load time, not on the first request."""
    cfg = engine.config
    example = engine.inputs.placeholder()  # text: a fixed one (examples may be shaped freely)
    if example is None:
        example = engine.source.input_example
    if example is None or not len(example):
        return
    example = example.head(1)
    if engine.price(engine.check(example)) > 0:  # a priced (costly) method: a token warm-up
        engine.explain(example, {"max_evals": 8})
    else:
        # the configured budget, not a minimal one: the first request then finds its array
        # sizes, the model's code paths and the numba kernels (tree) already warm
        evals = max(cfg.max_evals, 2 * len(cfg.features) + 1)
        engine.explain(example, {"max_evals": evals})
        # a client's frame has pandas' default string column labels, unlike the logged example
        # read back by MLflow: warm that path, repeatedly while it is cheap
        fresh = pd.DataFrame({str(c): example[c].to_numpy() for c in example.columns})
        deadline = time.monotonic() + WARM_BUDGET_S
        for _ in range(WARM_CALLS):
            engine.explain(fresh, {"max_evals": evals})
            if time.monotonic() > deadline:
                break


class ExplainerModel(PythonModel):
    """predict(DataFrame) -> one typed Explanation row per input row."""

    engine: Engine

    def load_context(self, context: PythonModelContext) -> None:
        with open(context.artifacts["config"]) as fh:
            config = json.load(fh)
        # the loader's settings (load_explainer), else the environment's (a plain MLflow load)
        settings = _LOAD_SETTINGS.get() or CoreSettings()
        self.engine = engine_from_artifacts(
            context.artifacts["source_model"], config, context.artifacts.get("background"),
            settings,
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
