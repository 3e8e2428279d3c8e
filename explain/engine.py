"""The explanation engine: source model + method + background + config -> Explanation rows.

This is what the pyfunc wraps; the REST service and the Spark UDF both go through it, so they
return identical numbers. Input checks name the field and the reason.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from eaas.explain.errors import BadRequest, Stop
from eaas.explain.schema import COLUMNS, Explanations
from eaas.explain.source import SourceModel
from eaas.explain.tabular import make_tabular
from eaas.explain.text import make_text
from eaas.explain.validation import (
    Params,
    check_budget,
    check_output,
    check_params,
    check_tabular,
    check_text,
)

METHODS = ("tree", "linear", "permutation", "partition", "kernel", "text", "integrated-gradients")


@dataclass
class ExplainerConfig:
    """Everything needed to rebuild the explainer, stored as JSON next to the bundle."""

    method: str
    kind: str
    output_space: str
    features: list[str]
    output_names: list[str]
    max_evals: int
    seed: int
    source_name: str = ""
    source_version: str = ""
    background_rows: int = 0
    # text longer than the model's limit: explain what the model sees and flag it (truncate),
    # or attribute every word over overlapping windows (window); docs/text.md says why
    long_text: str = "truncate"
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExplainerConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def defaults(self) -> Params:
        return Params(self.max_evals, self.seed, self.long_text)

    @property
    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_evals": self.max_evals, "seed": self.seed}
        if self.kind == "text":
            out["long_text"] = self.long_text
        return out


def choose_method(source: SourceModel, method: str) -> str:
    """`auto` picks from the model's family; anything else must be a known method."""
    if method == "auto":
        return {"text": "text", "tree": "tree", "linear": "linear"}.get(
            source.family, "permutation"
        )
    if method not in METHODS:
        raise BadRequest(f"method: unknown '{method}'; use auto or one of {', '.join(METHODS)}")
    return method


class Engine:
    def __init__(
        self, source: SourceModel, method: str, background: pd.DataFrame | None, config: dict
    ) -> None:
        self.source = source
        # shap explainers and maskers keep per-call state, and sampled methods reseed numpy's
        # global generator: one explanation at a time per engine, whatever thread asks (text
        # methods build their explainer per call and are re-entrant: no lock)
        self._lock = threading.Lock()
        if source.kind == "text":
            self.impl = make_text(method, source)
        else:
            self.impl = make_tabular(method, source, background)
        self.config = ExplainerConfig.from_dict(
            {
                **config,
                "method": method,
                "kind": source.kind,
                "features": source.feature_names,
                "output_names": source.output_names,
                "output_space": self.impl.output_space,
            }
        )

    def explain(
        self, df: pd.DataFrame, params: dict[str, Any] | None = None, stop: Stop | None = None
    ) -> pd.DataFrame:
        """Explain every row of `df`; one output row per input row, in order."""
        return pd.DataFrame(self.explain_records(df, params, stop), columns=COLUMNS)

    def explain_records(
        self, data: Any, params: dict[str, Any] | None = None, stop: Stop | None = None
    ) -> list:
        """As `explain`, as plain dicts; `data` is a DataFrame or records (dicts or strings).

        `stop()` is polled between model forward batches (text) or rows; when it turns true the
        call raises `Stopped` (explain/errors.py), so a caller's time budget frees the worker.
        """
        p = self.check_params(params)  # parameters first: a bad one is reported before input
        return self.explain_valid(self.check_input(data), p, stop)

    def check_input(self, data: Any) -> Any:
        """The core's input rule for this explainer: texts, or the float64 array in model order."""
        if self.source.kind == "text":
            return check_text(data)
        return check_tabular(data, self.source.feature_names, self.source.accepts_nan)

    def check_params(self, params: dict[str, Any] | None) -> Params:
        """The core's parameter rule, with this explainer's defaults and method."""
        p = check_params(params, self.config.defaults)
        check_budget(p, self.config.method, len(self.config.features))
        return p

    def explain_valid(
        self, data: Any, p: Params, stop: Stop | None = None, offset: int = 0
    ) -> list:
        """Already checked input (texts, or the float64 array in feature order) -> records.

        `offset` is the position of `data[0]` in the caller's instances (for error messages).
        """
        if len(data) == 0:
            return []
        out = self._run(data, p, stop)
        records = out.to_records()
        if not out.all_finite():  # one vector test; the per-record rule names the row
            check_output(records, offset)
        return records

    def explain_arrays(self, data: Any, params: dict[str, Any] | None = None) -> Explanations:
        """As `explain_records`, in array form, for callers that build columns themselves (the
        Spark worker writes Arrow from these arrays with no Python object per number)."""
        p = self.check_params(params)
        out = self._run(self.check_input(data), p, None)
        if not out.all_finite():
            check_output(out.to_records())
        return out

    def _run(self, data: Any, p: Params, stop: Stop | None) -> Explanations:
        # text methods keep their state per call and the fast tree and sampled paths own
        # theirs (per-row generators): only shap-backed paths need one call at a time
        free = getattr(self.impl, "reentrant", False) or getattr(self.impl, "thread_safe", False)
        with nullcontext() if free else self._lock:
            if self.source.kind == "text":
                return self.impl.explain(data, p, stop)
            frame = pd.DataFrame(data, columns=self.source.feature_names)
            return self.impl.explain(frame, p.max_evals, p.seed)
