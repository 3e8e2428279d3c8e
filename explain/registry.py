"""The MLflow registry: embedded default, model URI parsing and version lookup.

With no MLFLOW_TRACKING_URI, everything lives under EAAS_HOME (SQLite store + local artifact
root); with it set, the registry URI follows it so a team's tracking server needs no code change.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from eaas.explain.errors import BadRequest, NotFound, RegistryUnavailable
from eaas.explain.settings import CoreSettings

# MLflow answers a missing alias with INVALID_PARAMETER_VALUE
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_MODEL_URI = re.compile(rf"^models:/(?P<name>{_NAME})(?:/(?P<version>\d+)|@(?P<alias>{_NAME}))$")
_MODEL_REF = re.compile(rf"^(?P<name>{_NAME})(?:/(?P<version>\d+)|@(?P<alias>{_NAME}))?$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model named by version or alias (never a path, run or URI to elsewhere)."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        if self.version:
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}@{self.alias}"


def parse_model_uri(uri: str) -> ModelRef:
    """Parse `models:/NAME/VERSION` or `models:/NAME@ALIAS`."""
    m = _MODEL_URI.match(uri.strip())
    if not m:
        raise BadRequest(
            "model: expected 'models:/NAME/VERSION' or 'models:/NAME@ALIAS'", field="model"
        )
    return ModelRef(m["name"], m["version"], m["alias"])


def parse_model_ref(ref: str) -> ModelRef:
    """Parse `NAME`, `NAME/VERSION` or `NAME@ALIAS` (a bare name means the latest version)."""
    m = _MODEL_REF.match(ref.strip())
    if not m:
        raise BadRequest("model: expected NAME, NAME/VERSION or NAME@ALIAS", field="model")
    return ModelRef(m["name"], m["version"], m["alias"])


def tracking_uri(settings: CoreSettings | None = None) -> str:
    """The tracking URI in force: MLFLOW_TRACKING_URI, else SQLite under EAAS_HOME."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    home = (settings or CoreSettings()).home_dir
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"


def configure(settings: CoreSettings | None = None) -> MlflowClient:
    """Point MLflow's tracking and registry at the URI in force and return a client."""
    # per-file download bars flood logs of services and batch jobs
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI", uri))
    return MlflowClient()


def _local_artifact_root(uri: str) -> Path | None:
    """Artifacts of a local SQLite store go next to the database, not into the cwd."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).parent / "artifacts"
    return None


def use_experiment(name: str) -> str:
    """Create (with a local artifact root where the store is local) and activate an experiment."""
    client = configure()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        root = _local_artifact_root(tracking_uri())
        location = (root / name).as_uri() if root else None
        exp_id = client.create_experiment(name, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def resolve_version(ref: ModelRef, client: MlflowClient | None = None) -> ModelVersion:
    """The registered model version a reference points at; NotFound names what is missing."""
    client = client or configure()
    try:
        if ref.alias:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        if ref.version:
            return client.get_model_version(ref.name, ref.version)
        versions = client.search_model_versions(f"name = '{ref.name}'")
    except MlflowException as exc:
        if exc.error_code not in NOT_FOUND_CODES:  # the registry failed, not the name
            raise RegistryUnavailable(f"registry unavailable ({exc.error_code})") from exc
        raise NotFound(f"model '{_describe(ref)}' is not registered") from exc
    if not versions:
        raise NotFound(f"model '{ref.name}' is not registered")
    return max(versions, key=lambda v: int(v.version))


def _describe(ref: ModelRef) -> str:
    if ref.alias:
        return f"{ref.name}@{ref.alias}"
    return f"{ref.name}/{ref.version}" if ref.version else ref.name


@dataclass(frozen=True)
class ExplainerTarget:
    """A source model version and the explainer version that explains it."""

    source: ModelVersion
    explainer: ModelVersion

    @property
    def explainer_uri(self) -> str:
        return f"models:/{self.explainer.name}/{self.explainer.version}"


def resolve_explainer(ref: ModelRef | str, client: MlflowClient | None = None) -> ExplainerTarget:
    """From a source model (NAME, NAME@alias, NAME/version) or an explainer name to both versions.

    A source version points at its explainer with the `eaas.explainer` tag; an explainer version
    points back with `eaas.source_model` / `eaas.source_version`.
    """
    client = client or configure()
    ref = parse_model_ref(ref) if isinstance(ref, str) else ref
    mv = resolve_version(ref, client)
    if "eaas.source_model" in mv.tags:  # the name was an explainer's
        src = client.get_model_version(mv.tags["eaas.source_model"], mv.tags["eaas.source_version"])
        return ExplainerTarget(src, mv)
    uri = mv.tags.get("eaas.explainer")
    if not uri:
        raise NotFound(f"model '{_describe(ref)}' has no explainer (run: eaas explainer build)")
    exp = resolve_version(parse_model_uri(uri), client)
    return ExplainerTarget(mv, exp)
