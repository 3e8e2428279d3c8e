"""Which explainers the service serves, resolved only through the registry by name.

A request names `NAME`, `NAME@alias` or `NAME/version` of a served source model; nothing in a
request can name a URI, path or run. Aliases are re-read every `refresh_s` seconds, so an alias
moved in the registry is picked up without a restart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from explain.engine import Engine
from explain.errors import NotFound
from explain.registry import (
    ExplainerTarget,
    ModelRef,
    configure,
    parse_model_ref,
    resolve_explainer,
)

log = logging.getLogger("eaas.api")
_ENGINES: dict[str, Engine] = {}  # explainer URI -> engine, shared by every app in the process
_LOCK = threading.Lock()


@dataclass
class Loaded:
    target: ExplainerTarget
    engine: Engine

    @property
    def key(self) -> str:
        return self.target.explainer_uri

    @property
    def model(self) -> dict[str, str]:
        return {"name": self.target.source.name, "version": str(self.target.source.version)}

    @property
    def explainer(self) -> dict[str, Any]:
        e, cfg = self.target.explainer, self.engine.config
        return {
            "name": e.name,
            "version": str(e.version),
            "method": cfg.method,
            "params": cfg.params,
        }


def load_engine(uri: str) -> Engine:
    with _LOCK:
        if uri not in _ENGINES:
            log.info("loading explainer %s", uri)
            _ENGINES[uri] = mlflow.pyfunc.load_model(uri).unwrap_python_model().engine
        return _ENGINES[uri]


def discover(client: MlflowClient) -> list[str]:
    """Every source model that has a registered explainer."""
    names = set()
    for rm in client.search_registered_models():
        for mv in client.search_model_versions(f"name = '{rm.name}'"):
            if "eaas.source_model" in mv.tags:
                names.add(mv.tags["eaas.source_model"])
    return sorted(names)


@dataclass
class ModelStore:
    requested: list[str]
    defaults: dict[str, ModelRef] = field(default_factory=dict)
    aliases: dict[tuple[str, str], Loaded] = field(default_factory=dict)
    versions: dict[tuple[str, str], Loaded] = field(default_factory=dict)
    error: str | None = "loading"

    def load_all(self) -> None:
        """Resolve and load every requested model; `error` says why the store is not ready."""
        try:
            client = configure()
            refs = [parse_model_ref(r) for r in (self.requested or discover(client))]
            if not refs:
                self.error = "no registered explainers to serve"
                return
            for ref in refs:
                self.defaults[ref.name] = ref
                self._resolve(ref)
            self.error = None
        except Exception as exc:  # reported by /readyz; the process stays up for /healthz
            log.exception("loading explainers failed")
            self.error = f"loading failed: {getattr(exc, 'message', type(exc).__name__)}"

    @property
    def ready(self) -> bool:
        return self.error is None

    def names(self) -> list[str]:
        return sorted(self.defaults)

    def lookup(self, ref_text: str) -> Loaded | None:
        """An already loaded explainer for NAME, NAME@alias or NAME/version; no I/O."""
        ref = parse_model_ref(ref_text)
        if ref.name not in self.defaults:
            raise NotFound(f"model '{ref.name}' is not served")
        if not ref.version and not ref.alias:
            ref = self.defaults[ref.name]
        if ref.alias:
            return self.aliases.get((ref.name, ref.alias))
        return self.versions.get((ref.name, str(ref.version)))

    def get(self, ref_text: str) -> Loaded:
        """As lookup, resolving and loading through the registry when not loaded yet."""
        ref = parse_model_ref(ref_text)
        found = self.lookup(ref_text)
        if found is not None:
            return found
        return self._resolve(ref if (ref.version or ref.alias) else self.defaults[ref.name])

    def _resolve(self, ref: ModelRef) -> Loaded:
        target = resolve_explainer(ref)
        if target.source.name != ref.name:
            raise NotFound(f"model '{ref.name}' is not served")
        loaded = Loaded(target, load_engine(target.explainer_uri))
        self.versions[(ref.name, str(target.source.version))] = loaded
        if ref.alias:
            self.aliases[(ref.name, ref.alias)] = loaded
        return loaded

    def refresh(self) -> None:
        """Re-read every alias seen so far; load the explainer of any that moved."""
        for name, alias in list(self.aliases):
            try:
                self._resolve(ModelRef(name, alias=alias))
            except Exception:  # a deleted alias keeps serving the last good one; logged
                log.warning("refreshing %s@%s failed", name, alias, exc_info=True)

    def describe(self, name: str) -> dict[str, Any]:
        """A served model: versions with explainers, aliases, method, kind, inputs."""
        if name not in self.defaults:
            raise NotFound(f"model '{name}' is not served")
        current = self.get(name)
        client = MlflowClient()
        versions = [
            str(mv.version)
            for mv in client.search_model_versions(f"name = '{name}'")
            if "eaas.explainer" in mv.tags
        ]
        # search results carry no aliases in every store; the registered model does
        aliases = {
            a: str(v)
            for a, v in client.get_registered_model(name).aliases.items()
            if str(v) in versions
        }
        cfg = current.engine.config
        return {
            "name": name,
            "versions": sorted(versions, key=int),
            "aliases": aliases,
            "method": cfg.method,
            "kind": cfg.kind,
            "inputs": list(cfg.features),
            "version": current.model["version"],
            "explainer": current.explainer,
            "output_names": list(cfg.output_names),
            "output_space": cfg.output_space,
        }
