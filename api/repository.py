"""The model repository: the explainers the service serves, loaded and held, resolved only
through the registry by name.

A request names `NAME`, `NAME@alias` or `NAME/version` of a served source model; nothing in a
request can name a URI, path or run. Aliases are re-read every `refresh_s` seconds, so an alias
moved in the registry is picked up without a restart.

The repository owns the loaded explainers: at most `max_loaded` engines (LRU), except that the
versions the served names and aliases point to stay loaded; an alias that moves releases its old
target. A registry that does not answer at start, or one model whose artifact cannot be loaded,
leaves the process up and says why (per model) until a later attempt succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from mlflow.tracking import MlflowClient

from eaas.api.errors import Unavailable
from eaas.explain.engine import Engine
from eaas.explain.errors import EaasError, NotFound, one_line
from eaas.explain.pyfunc import load_explainer
from eaas.explain.registry import (
    ExplainerTarget,
    ModelRef,
    configure,
    parse_model_ref,
    resolve_explainer,
)
from eaas.explain.settings import CoreSettings

log = logging.getLogger("eaas.api")
REASON_CHARS = 200


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


def reason(exc: BaseException) -> str:
    """One line saying why, for /readyz and model details (never a stack trace)."""
    text, kind = one_line(exc, REASON_CHARS), type(exc).__name__
    return text if text.startswith(kind) else f"{kind}: {text}"[:REASON_CHARS]


def discover(client: MlflowClient) -> list[str]:
    """Every source model that has a registered explainer."""
    names = set()
    for rm in client.search_registered_models():
        for mv in client.search_model_versions(f"name = '{rm.name}'"):
            if "eaas.source_model" in mv.tags:
                names.add(mv.tags["eaas.source_model"])
    return sorted(names)


def _pin_key(ref: ModelRef) -> tuple[str, str] | None:
    """Names and aliases stay loaded; a fixed version is a plain LRU entry."""
    if ref.version:
        return None
    return (ref.name, ref.alias or "")


class ModelRepository:
    """The loaded explainers of the served names, aliases and versions (LRU, names pinned)."""

    def __init__(
        self,
        requested: list[str],
        max_loaded: int = 8,
        settings: CoreSettings | None = None,
        loader: Callable[[str], Engine] | None = None,
    ) -> None:
        self.requested = requested
        self.max_loaded = max(1, max_loaded)
        self.settings = settings  # None: read the environment when needed
        self.loader = loader or partial(load_explainer, settings=settings)
        self.defaults: dict[str, ModelRef] = {}  # served name -> its default reference
        self.pins: dict[tuple[str, str], ExplainerTarget] = {}  # (name, alias or "") -> target
        self.versions: dict[tuple[str, str], ExplainerTarget] = {}  # resolved fixed versions
        self.engines: OrderedDict[str, Engine] = OrderedDict()  # explainer URI -> engine, LRU
        self.problems: dict[str, str] = {}  # served name -> why it is not ready
        self.error: str | None = "loading"
        self.peak = 0  # most engines held at once (tests and metrics)
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    # --- start and readiness ------------------------------------------------------------------

    def connect(self) -> bool:
        """Reach the registry and learn the served names; False (and `error`) when it fails."""
        try:
            client = configure(self.settings)
            client.search_registered_models(max_results=1)  # does the registry answer?
            refs = [parse_model_ref(r) for r in (self.requested or discover(client))]
        except Exception as exc:  # reported by /readyz; retried by the caller
            self.error = f"registry unreachable: {reason(exc)}"
            log.warning("registry unreachable: %s", reason(exc))
            return False
        if not refs:
            self.error = "no registered explainers to serve"
            return False
        self.defaults = {r.name: r for r in refs}
        return True

    def load_all(self, stop: threading.Event | None = None, retry_s: float = 5.0) -> None:
        """Connect (retrying until the registry answers) and load each served model."""
        while not self.connect():
            if stop is None or stop.wait(retry_s):
                return
        self.retry_failed()

    def retry_failed(self) -> None:
        """Load every served model not loaded yet; one model's failure does not stop others."""
        for name, ref in list(self.defaults.items()):
            if name in self.problems or self._pinned_engine(ref) is None:
                try:
                    self._resolve(ref)
                    self.problems.pop(name, None)
                except Exception as exc:
                    log.warning("model %s not ready: %s", name, reason(exc))
                    self.problems[name] = reason(exc)
        ok = [n for n in self.defaults if n not in self.problems]
        self.error = None if ok else "no model could be loaded: " + "; ".join(
            f"{n}: {self.problems[n]}" for n in sorted(self.problems)
        )

    @property
    def ready(self) -> bool:
        return self.error is None

    def require_ready(self) -> ModelRepository:
        """Itself once ready (at least one model serves); 503 saying why otherwise."""
        if not self.ready:
            raise Unavailable(f"not ready: {self.error}", retry_after=2)
        return self

    def names(self) -> list[str]:
        """Served names that are ready."""
        return sorted(n for n in self.defaults if n not in self.problems)

    # --- lookups ------------------------------------------------------------------------------

    def _served(self, ref: ModelRef) -> ModelRef:
        if ref.name not in self.defaults:
            raise NotFound(f"model '{ref.name[:100]}' is not served")
        return ref if (ref.version or ref.alias) else self.defaults[ref.name]

    def _pinned_engine(self, ref: ModelRef) -> Loaded | None:
        key = _pin_key(ref)
        target = self.pins.get(key) if key else self.versions.get((ref.name, str(ref.version)))
        if target is None:
            return None
        engine = self.engines.get(target.explainer_uri)
        return Loaded(target, engine) if engine is not None else None

    def lookup(self, ref_text: str) -> Loaded | None:
        """An already loaded explainer for NAME, NAME@alias or NAME/version; no I/O."""
        ref = self._served(parse_model_ref(ref_text))
        with self._lock:
            found = self._pinned_engine(ref)
            if found is not None:
                self.engines.move_to_end(found.key)
            return found

    def get(self, ref_text: str) -> Loaded:
        """As lookup, resolving and loading through the registry when not loaded yet."""
        ref = self._served(parse_model_ref(ref_text))
        found = self.lookup(ref_text)
        if found is not None:
            return found
        if ref.name in self.problems and ref == self.defaults[ref.name]:
            raise Unavailable(f"model '{ref.name}' is not ready: {self.problems[ref.name]}", 5)
        try:
            return self._resolve(ref)
        except EaasError:
            raise
        except Exception as exc:  # registry down, corrupt artifact: not the client's fault
            log.warning("loading %s failed: %s", ref_text, reason(exc))
            raise Unavailable(f"model '{ref.name}' could not be loaded: {reason(exc)}", 5) from None

    def _resolve(self, ref: ModelRef) -> Loaded:
        target = resolve_explainer(ref)
        if target.source.name != ref.name:
            raise NotFound(f"model '{ref.name}' is not served")
        engine = self._engine(target.explainer_uri)
        key = _pin_key(ref)
        with self._lock:
            if key is not None:
                old = self.pins.get(key)
                self.pins[key] = target
                if old is not None and old.explainer_uri != target.explainer_uri:
                    self._release(old.explainer_uri)  # an alias moved: free its old target
            else:
                self.versions[(ref.name, str(ref.version))] = target
            self.engines[target.explainer_uri] = engine
            self.engines.move_to_end(target.explainer_uri)
            self._evict()
        return Loaded(target, engine)

    def _engine(self, uri: str) -> Engine:
        """The engine of `uri`, loading it once even when many requests ask at the same time."""
        with self._lock:
            if uri in self.engines:
                return self.engines[uri]
            gate = self._loading.setdefault(uri, threading.Lock())
        with gate:
            with self._lock:
                if uri in self.engines:
                    return self.engines[uri]
            engine = self.loader(uri)
            with self._lock:
                self._loading.pop(uri, None)
            return engine

    def _pinned_uris(self) -> set[str]:
        return {t.explainer_uri for t in self.pins.values()}

    def _release(self, uri: str) -> None:
        if uri not in self._pinned_uris():
            self.engines.pop(uri, None)
            self.versions = {k: t for k, t in self.versions.items() if t.explainer_uri != uri}

    def _evict(self) -> None:
        """Drop least recently used unpinned engines beyond the bound (caller holds the lock)."""
        pinned = self._pinned_uris()
        for uri in list(self.engines):
            if len(self.engines) <= self.max_loaded:
                break
            if uri not in pinned:
                self._release(uri)
        self.peak = max(self.peak, len(self.engines))

    def refresh(self) -> None:
        """Re-read every name and alias served so far; load any that moved; retry failures."""
        for name, alias in list(self.pins):
            ref = ModelRef(name, alias=alias) if alias else self.defaults.get(name)
            if ref is None:
                continue
            try:
                self._resolve(ref)
            except Exception:  # a deleted alias keeps serving the last good one; logged
                log.warning("refreshing %s@%s failed", name, alias, exc_info=True)
        if self.problems:
            self.retry_failed()

    async def keep_fresh(self, every: float) -> None:
        """`refresh` every `every` seconds, off the event loop, once connected (until cancelled)."""
        while True:
            await asyncio.sleep(every)
            if self.defaults:  # connected: re-read aliases, retry the models that failed
                await asyncio.to_thread(self.refresh)

    # --- descriptions ---------------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        """Ready or not, with the reason (KServe V1 reads `ready`)."""
        if name not in self.defaults:
            raise NotFound(f"model '{name[:100]}' is not served")
        if name in self.problems:
            return {"name": name, "ready": False, "reason": self.problems[name]}
        return {"name": name, "ready": True}

    def describe(self, name: str) -> dict[str, Any]:
        """A served model: versions with explainers, aliases, method, kind, inputs."""
        state = self.status(name)
        if not state["ready"]:
            return state
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
            **state,
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

