"""The explainer's stored configuration (config.json next to the bundle)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from eaas.explain.columns import Columns
from eaas.explain.inputs import InputRule, params_for, rule_for
from eaas.explain.validation import Params


@dataclass
class ExplainerConfig:
    """Everything needed to rebuild the explainer, stored as JSON next to the bundle."""

    method: str
    kind: str  # the input kind its method takes (explain/inputs.py): tabular | text
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
    # explainers built before tolerances spend their whole budget (0), as they always did, so
    # their stored explanations still replay to the same numbers
    tolerance: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    # tabular: each input column's type, known values and what the model takes
    # (explain/columns.py); empty for text and for explainers built before column types
    columns: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExplainerConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def defaults(self) -> Params:
        return Params(self.max_evals, self.seed, self.long_text, self.tolerance)

    @property
    def inputs(self) -> InputRule:
        """The input rule of this explainer (what it takes, how reports name its players)."""
        return rule_for(self.kind, self.features, columns=Columns.from_dicts(self.columns))

    @property
    def params(self) -> dict[str, Any]:
        """The default parameters that apply to this explainer, by name."""
        return used_params(self.kind, self.defaults)


def used_params(kind: str, p: Params) -> dict[str, Any]:
    """The parameters of `p` that apply to an explainer of `kind` (what a response reports)."""
    return {name: getattr(p, name) for name in params_for(kind)}
