"""The FastAPI app, composed: settings, the model repository, metrics, the data plane (with
its executor and the explanation store), error handlers, middleware, routers and lifespan.

Nothing is decided here: requests are handled by the routers (api/routes/), their shared
dependencies are api/deps.py, and an explain request is the data plane's (api/dataplane.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from eaas.api import audit, errors
from eaas.api.batching import Executor
from eaas.api.dataplane import DataPlane
from eaas.api.jobs.intake import Intake
from eaas.api.jobs.runner import JobRunner
from eaas.api.jobs.store import JobStore
from eaas.api.metrics import Metrics
from eaas.api.middleware import Observe
from eaas.api.repository import ModelRepository
from eaas.api.routes import audit as audit_routes
from eaas.api.routes import audit_pages, jobs, ops, review, v1
from eaas.api.settings import ServeSettings
from eaas.explain.engine import Engine

__all__ = ["Observe", "create_app"]

# in this order: the stored explanations' /v1 routes before /v1/models/{name:path}
ROUTERS = (ops.router, audit_routes.router, jobs.router, v1.router, review.router,
           audit_pages.router)  # fmt: skip


def create_app(
    settings: ServeSettings | None = None, loader: Callable[[str], Engine] | None = None
) -> FastAPI:
    """`loader`: explainer URI -> engine (default: the core's `load_explainer`; on Ray, one
    that also gives the engine its batch workers)."""
    settings = settings or ServeSettings()
    app = FastAPI(
        title="eaas",
        version="0.1.0",
        lifespan=_lifespan,
        description="Explanations of registered models' predictions (SHAP).",
    )
    app.state.settings = settings
    app.state.repository = ModelRepository(
        list(settings.models), settings.max_loaded_explainers, settings, loader
    )
    app.state.metrics = Metrics()
    app.state.explanation_store = None  # opened by the lifespan (EAAS_STORE=off: stays None)
    app.state.dataplane = None  # made by the lifespan, with its executor
    app.state.jobs = app.state.job_intake = app.state.job_runner = None  # the lifespan's too
    errors.install(app)
    app.add_middleware(Observe)
    for router in ROUTERS:
        app.include_router(router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    settings: ServeSettings = state.settings
    repository: ModelRepository = state.repository
    state.explanation_store = audit.open_store(settings, state.metrics.registry)
    executor = Executor(settings, state.metrics)
    state.dataplane = DataPlane(settings, repository, executor, state.explanation_store)
    runner_task = _start_jobs(state, executor)
    stop = threading.Event()
    # load off the loop: /healthz answers while /readyz says why it is not ready yet, and
    # a registry that does not answer is retried until it does
    threading.Thread(
        target=repository.load_all, args=(stop, settings.registry_retry_s), name="eaas-load",
        daemon=True,
    ).start()
    refresher = asyncio.create_task(repository.keep_fresh(settings.refresh_s))
    try:
        yield
    finally:
        stop.set()
        refresher.cancel()
        if runner_task is not None:
            await state.job_runner.close()
            runner_task.cancel()
        state.dataplane.close()
        if state.explanation_store is not None:
            state.explanation_store.close()


def _start_jobs(state: Any, executor: Executor) -> asyncio.Task | None:
    """Jobs live in the explanation store's database: none without it. The runner task, when
    this process runs jobs (EAAS_JOB_THREADS > 0)."""
    if state.explanation_store is None:
        return None
    settings: ServeSettings = state.settings
    state.jobs = JobStore(state.explanation_store)
    if settings.job_threads > 0:
        state.job_runner = JobRunner(settings, state.jobs, state.repository, executor,
                                     state.metrics)  # fmt: skip
    state.job_intake = Intake(state.dataplane, state.jobs, state.job_runner)
    if state.job_runner is None:
        return None
    return asyncio.create_task(state.job_runner.run())
