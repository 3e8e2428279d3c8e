"""Shared dependencies of the routes: the API-key check and what the app holds.

Each is a plain function of the request, usable with `Depends(...)` or called directly. The app
(`api/app.py`) puts the objects on `app.state`; nothing here imports the app or a router.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Request

from eaas.api.errors import Unauthorized
from eaas.api.metrics import Metrics
from eaas.api.repository import ModelRepository
from eaas.api.settings import ServeSettings
from eaas.explain.errors import NotFound

if TYPE_CHECKING:  # the explanation store's module imports SQLAlchemy: only for the type
    from eaas.api.audit.store import ExplanationStore
    from eaas.api.dataplane import DataPlane
    from eaas.api.jobs.intake import Intake
    from eaas.api.jobs.runner import JobRunner
    from eaas.api.jobs.store import JobStore


def require_key(request: Request) -> None:
    """With API keys configured, `Authorization: Bearer <key>` must carry one of them."""
    keys: list[str] = settings(request).api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    # compare with every key, in constant time, so timing does not tell which prefix matched
    ok = [hmac.compare_digest(token.encode(), k.encode()) for k in keys]
    if not any(ok):
        raise Unauthorized("invalid API key")


def settings(request: Request) -> ServeSettings:
    return request.app.state.settings


def metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def repository(request: Request) -> ModelRepository:
    """The model repository once ready (at least one model serves); 503 with why otherwise."""
    repo: ModelRepository = request.app.state.repository
    return repo.require_ready()


def served(request: Request, name: str) -> ModelRepository:
    """The ready repository, when it serves `name` (a plain name); 404 otherwise."""
    repo = repository(request)
    if name not in repo.names():
        raise NotFound(f"model '{name}' is not served")
    return repo


def maybe_explanation_store(request: Request) -> ExplanationStore | None:
    """The explanation store, or None when it is off (EAAS_STORE=off)."""
    return getattr(request.app.state, "explanation_store", None)


def explanation_store(request: Request) -> ExplanationStore:
    """The explanation store; 404 when it is off."""
    store = maybe_explanation_store(request)
    if store is None:
        raise NotFound("the explanation store is off (EAAS_STORE=off)")
    return store


def dataplane(request: Request) -> DataPlane:
    return request.app.state.dataplane


def job_store(request: Request) -> JobStore:
    """The jobs' tables (in the explanation store's database); 404 when the store is off."""
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise NotFound("jobs need the explanation store, which is off (EAAS_STORE=off)")
    return jobs


def job_intake(request: Request) -> Intake:
    job_store(request)  # the same 404 when the store is off
    return request.app.state.job_intake


def job_runner(request: Request) -> JobRunner | None:
    """This process's job runner (None when it runs no jobs: EAAS_JOB_THREADS=0)."""
    return getattr(request.app.state, "job_runner", None)
