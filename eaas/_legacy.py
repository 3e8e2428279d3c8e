"""Deprecated alias: the top-level name `explain` for `eaas.explain`.

eaas 0.1 installed its packages as top-level modules (`explain`, `api`, `batch`, `reports`).
Every explainer logged by 0.1 stores a models-from-code file that runs
`from explain.pyfunc import ExplainerModel`, so that one name must keep importing until those
explainers are rebuilt. The finder serves `explain` and `explain.*` as the very same module
objects as `eaas.explain.*` (no second copy of any class), with a DeprecationWarning, and only
when no other `explain` module is importable: a user's own `explain` package always wins.
Removal is planned for eaas 0.3 (docs/development.md, "Deprecated names").
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

LEGACY = "explain"
TARGET = "eaas.explain"
REMOVAL = "eaas 0.3"


def _ours(spec: importlib.machinery.ModuleSpec | None) -> bool:
    """True when the `explain` found on sys.path is this package's own folder (a checkout)."""
    if spec is None or not spec.submodule_search_locations:
        return spec is None
    here = Path(__file__).resolve().parent.parent / "explain"
    return any(Path(p).resolve() == here.resolve() for p in spec.submodule_search_locations)


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        # the module is already executed under its real name; the import system only
        # records it under the legacy name as well
        return None


class LegacyFinder(importlib.abc.MetaPathFinder):
    """Serves `explain[.x]` as `eaas.explain[.x]` when nothing else provides `explain`."""

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001 - import API
        if fullname != LEGACY and not fullname.startswith(LEGACY + "."):
            return None
        if fullname == LEGACY:
            others = [f for f in sys.meta_path if f is not self]
            found = next((s for f in others if (s := _find(f, fullname)) is not None), None)
            if not _ours(found):
                return None  # someone else's `explain`: theirs
            warnings.warn(
                f"the module name '{LEGACY}' is deprecated; import '{TARGET}' "
                f"(removed in {REMOVAL})",
                DeprecationWarning,
                stacklevel=2,
            )
        elif not getattr(sys.modules.get(LEGACY), "__name__", "").startswith(TARGET):
            return None  # the parent is someone else's package
        real = TARGET + fullname[len(LEGACY):]
        if importlib.util.find_spec(real) is None:
            return None
        is_pkg = fullname == LEGACY or hasattr(importlib.import_module(real), "__path__")
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=is_pkg)


def _find(finder: object, name: str) -> importlib.machinery.ModuleSpec | None:
    find = getattr(finder, "find_spec", None)
    return find(name, None) if find is not None else None


def install() -> None:
    """Put the finder first (once): it must see `explain` before the path finder would load a
    checkout's `explain/` folder as a second copy of the package."""
    if not any(isinstance(f, LegacyFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, LegacyFinder())
