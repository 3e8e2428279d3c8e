"""The registry of methods: a name -> its class, and what `auto` picks for a model.

Adding a method is one module implementing `explain.method.Method` plus one line here
(docs/development.md shows a worked example). Classes are imported when first asked for, so a
tabular worker never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from eaas.explain.errors import BadRequest, UnsupportedModel
from eaas.explain.method import Method
from eaas.explain.source import SourceModel


@dataclass(frozen=True)
class Entry:
    target: str  # "module:Class"
    auto_for: tuple[str, ...] = ()  # model families `auto` picks this method for


# Order matters for `auto`: the first entry whose families include the model's wins.
REGISTRY: dict[str, Entry] = {
    "tree": Entry("eaas.explain.tabular.tree:TreeMethod", auto_for=("tree",)),
    "linear": Entry("eaas.explain.tabular.linear:LinearMethod", auto_for=("linear",)),
    "permutation": Entry("eaas.explain.tabular.permutation:PermutationMethod", ("other",)),
    "partition": Entry("eaas.explain.tabular.partition:PartitionMethod"),
    "kernel": Entry("eaas.explain.tabular.kernel:KernelMethod"),
    "text-permutation": Entry("eaas.explain.text.sampled:TextPermutationMethod",
                              auto_for=("text",)),
    "text-kernel": Entry("eaas.explain.text.sampled:TextKernelMethod"),
    # Owen values over shap's word hierarchy: kept for the explainers built with it
    "text": Entry("eaas.explain.text.partition:TextPartitionMethod"),
    "integrated-gradients": Entry("eaas.explain.text.ig:IntegratedGradientsMethod"),
}
METHODS = tuple(REGISTRY)


def method_class(name: str) -> type[Method]:
    """The class registered as `name`; a 400 naming `method` when there is none."""
    entry = REGISTRY.get(name)
    if entry is None:
        raise BadRequest(
            f"method: unknown '{name[:100]}'; use auto or one of {', '.join(METHODS)}",
            field="method",
        )
    module, _, cls = entry.target.partition(":")
    found: type[Method] = getattr(importlib.import_module(module), cls)
    return found


def choose(source: SourceModel, name: str) -> str:
    """`auto` -> the method for the model's family; any other name must be registered."""
    if name != "auto":
        method_class(name)
        return name
    for method, entry in REGISTRY.items():
        if source.family in entry.auto_for:
            return method
    raise UnsupportedModel(f"no method explains a model of family '{source.family}'")


def make(name: str, source: SourceModel, background) -> Method:  # noqa: ANN001 - frame or None
    """An instance of method `name` for `source`, refused with one line when it cannot apply."""
    cls = method_class(name)
    if cls.capabilities.inputs != source.kind:
        fits = [m for m in METHODS if method_class(m).suits(source)]
        raise UnsupportedModel(
            f"method '{name}' does not apply to a {source.kind} model (use {' or '.join(fits)})"
        )
    return cls(source, background)
