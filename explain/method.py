"""The one method interface: every way of computing attributions implements `Method`.

A method declares what it can do (`Capabilities`) and the engine asks it, instead of branching on
the model's kind: which inputs it takes, exact or sampled, its output space, whether several
threads may call it at once, and what a request costs. Methods are found by name through the
registry in `explain/methods.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from eaas.explain.errors import Stop
from eaas.explain.schema import Explanations
from eaas.explain.source import SourceModel
from eaas.explain.validation import Params


@dataclass(frozen=True)
class Capabilities:
    """What a method declares about itself; the engine and the adapters read only this."""

    inputs: str  # the input rule it takes: "tabular" (checked float rows) | "text" (strings)
    exact: bool  # exact attributions; otherwise sampled estimates of them
    # explain() keeps no per-call state on the object (no shap explainer, no global RNG): the
    # engine then runs it from several threads at once, without its lock
    reentrant: bool = False
    needs_background: bool = False  # a background sample is stored with the explainer


class Method(ABC):
    """One way of explaining a model: `explain(data, params, stop) -> Explanations`.

    `data` is what the input rule of `capabilities.inputs` returned (a float64 array in feature
    order for tabular, a list of strings for text). The result carries the model's own
    prediction in `output_space`, so the engine measures additivity instead of assuming it.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        self.source = source
        self.background = background

    @classmethod
    def suits(cls, source: SourceModel) -> bool:
        """Whether this method can take `source` at all (beyond its input kind): what the
        registry suggests when another method is refused. Its __init__ says why not."""
        return source.kind == cls.capabilities.inputs

    @property
    def output_space(self) -> str:
        """probability | log_odds | raw: the space of prediction, base values and values."""
        return self.source.output_space

    @property
    def reentrant(self) -> bool:
        """Whether this instance may be called from several threads (a method may decide at
        build, e.g. tree falls back to shap's stateful explainer for some models)."""
        return self.capabilities.reentrant

    @abstractmethod
    def explain(self, data: Any, params: Params, stop: Stop | None = None) -> Explanations:
        """Explain every instance of `data`, in order; poll `stop` between units of work."""

    def cost(self, data: Any, params: Params) -> int:
        """Estimated work of a request (words x evaluations for text); 0: cheap, not priced."""
        return 0

    # --- fan-out: one explanation's model evaluations spread over other processes -----------

    def spread_to(self, spread: Callable[..., list[Any]]) -> bool:
        """Run this method's independent evaluation batches through `spread(batches, stop)`
        (results in order, equal to `run_batch` on each); False when the method has none."""
        return False

    def run_batch(self, batch: Any) -> Any:
        """One evaluation batch, as `spread` gets it: what a remote worker runs."""
        from eaas.explain.errors import UnsupportedModel  # the default: spread_to said False

        raise UnsupportedModel(f"method '{self.name}' has no evaluation batches to spread")
