"""The explanation engine: source model + method + background + config -> Explanation rows.

This is what the pyfunc wraps and what every adapter uses (REST, Spark, reports, the CLI), so
all return identical numbers. One surface: `check` once (parameters, then instances), then
`explain_records` or `explain_arrays`. The engine asks its method and its input rule; it never
branches on the kind of model.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from eaas.explain.columns import Columns
from eaas.explain.config import ExplainerConfig, used_params
from eaas.explain.errors import Stop
from eaas.explain.inputs import RULES, InputRule, rule_for
from eaas.explain.method import Method
from eaas.explain.methods import METHODS, choose, make, method_class
from eaas.explain.schema import COLUMNS, Explanations
from eaas.explain.source import SourceModel
from eaas.explain.validation import Params, check_budget, check_output, check_params

__all__ = ["METHODS", "Checked", "Engine", "ExplainerConfig", "choose"]


@dataclass(frozen=True)
class Checked:
    """Instances and parameters that passed the engine's rules: what `explain_*` take.

    `data` is what the method takes (a float64 array in feature order, or texts); slicing it
    keeps it checked.
    """

    data: Any
    params: Params

    def __len__(self) -> int:
        return len(self.data)

    def part(self, start: int, stop: int) -> Checked:
        return Checked(self.data[start:stop], self.params)

    def take(self, positions: list[int]) -> Checked:
        """The instances at `positions`, in that order."""
        if isinstance(self.data, np.ndarray):
            return Checked(self.data[positions], self.params)
        return Checked([self.data[i] for i in positions], self.params)


class Engine:
    def __init__(
        self, source: SourceModel, method: str, background: pd.DataFrame | None, config: dict
    ) -> None:
        kind = method_class(method).capabilities.inputs
        # the input columns' types: as stored with the explainer, else described now (build)
        stored = config.get("columns")
        columns = (Columns.from_dicts(stored) if stored
                   else RULES[kind].describe(source, _example(background, source)))
        self.source = source = replace(source, columns=columns)
        self.method: Method = make(method, source, background)
        self.inputs: InputRule = rule_for(kind, source.feature_names, source.accepts_nan,
                                          columns)
        self.config = ExplainerConfig.from_dict(
            {
                **config,
                "columns": columns.to_dicts(),
                "method": method,
                "kind": kind,
                "features": source.feature_names,
                "output_names": source.output_names,
                "output_space": self.method.output_space,
            }
        )
        # shap-backed methods keep per-call state: one explanation at a time per engine,
        # whatever thread asks; a re-entrant method runs without the lock
        self._lock: AbstractContextManager[Any] = (
            nullcontext() if self.method.reentrant else threading.Lock()
        )

    @property
    def reentrant(self) -> bool:
        return self.method.reentrant

    @property
    def exact(self) -> bool:
        return self.method.capabilities.exact

    # --- the rules ----------------------------------------------------------------------------

    def check_params(self, params: dict[str, Any] | None) -> Params:
        """The parameter rule with this explainer's defaults; names `parameters.<name>`."""
        p = check_params(params, self.config.defaults)
        check_budget(p, self.config.method, len(self.config.features))
        return p

    def check(
        self, data: Any, params: dict[str, Any] | Params | None = None,
        max_chars: int | None = None,
    ) -> Checked:
        """Parameters first (a bad one is reported before the input), then every instance;
        `max_chars` is the caller's limit on a text's length (413 above). `params` may be the
        `Params` `check_params` already returned (not judged twice)."""
        p = params if isinstance(params, Params) else self.check_params(params)
        return Checked(self.inputs.check(data, max_chars), p)

    def check_rows(
        self, frame: pd.DataFrame, params: dict[str, Any] | None = None,
        max_chars: int | None = None, limit_hint: str = "",
    ) -> tuple[Checked, list[int], list[str | None]]:
        """As `check`, keeping going past bad rows: (the good rows, their positions, each row's
        error or None). For callers that write an error row instead of failing (Spark);
        `limit_hint` is added to the message of a text over `max_chars`."""
        p = self.check_params(params)
        data, ok, errors = self.inputs.split(frame, max_chars, limit_hint)
        return Checked(data, p), ok, errors

    def used_params(self, p: Params) -> dict[str, Any]:
        """The parameters that apply to this explainer, as a response reports them."""
        return used_params(self.config.kind, p)

    def price(self, checked: Checked) -> int:
        """The method's estimate of the work (0 when it is cheap): for cost limits."""
        return self.method.cost(checked.data, checked.params)

    # --- explaining ---------------------------------------------------------------------------

    def explain_records(
        self, checked: Checked, stop: Stop | None = None, offset: int = 0
    ) -> list[dict]:
        """One plain dict per instance, in order. `stop()` is polled between model forward
        batches (text) or rows; when it turns true the call raises `Stopped`. `offset` is the
        position of `checked.data[0]` in the caller's instances (for error messages)."""
        if len(checked) == 0:
            return []
        out = self._run(checked, stop)
        records = out.to_records()
        if not out.all_finite():  # one vector test; the per-record rule names the row
            check_output(records, offset)
        return records

    def explain_arrays(self, checked: Checked, stop: Stop | None = None) -> Explanations:
        """As `explain_records`, in array form, for callers that build columns themselves (the
        Spark worker writes Arrow from these arrays with no Python object per number)."""
        out = self._run(checked, stop)
        if not out.all_finite():
            check_output(out.to_records())
        return out

    def explain(self, df: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """check + explain_records as the typed DataFrame: the pyfunc's predict."""
        return pd.DataFrame(self.explain_records(self.check(df, params)), columns=COLUMNS)

    def _run(self, checked: Checked, stop: Stop | None) -> Explanations:
        with self._lock:
            return self.method.explain(checked.data, checked.params, stop)


def _example(background: pd.DataFrame | None, source: SourceModel) -> pd.DataFrame | None:
    """Rows that show the inputs' types: the background, else the model's logged example."""
    return background if background is not None and len(background) else source.input_example
