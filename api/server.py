"""Run the service with uvicorn; refuse to listen off-loopback without API keys.

With several workers, Prometheus' multiprocess mode makes /metrics report the whole service:
the server makes a folder for the workers' metric files (PROMETHEUS_MULTIPROC_DIR), passes it to
them through the environment, and removes it when it exits. On SIGTERM uvicorn stops accepting
connections and lets the requests in flight finish for at most `grace_s` seconds.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import uvicorn

from eaas.api.settings import ServeSettings
from eaas.explain.errors import BadRequest

MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


def check_exposure(settings: ServeSettings) -> None:
    if not settings.loopback and not settings.api_keys:
        raise BadRequest(
            f"refusing to serve on {settings.host} without API keys: set EAAS_API_KEYS "
            "or bind to 127.0.0.1"
        )


def serve(settings: ServeSettings) -> None:
    check_exposure(settings)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # worker processes rebuild settings from the environment: pass CLI overrides through it
    os.environ["EAAS_MODELS"] = ",".join(settings.models)
    os.environ["EAAS_HOST"] = settings.host
    owned = None
    if settings.workers > 1 and not os.environ.get(MULTIPROC):
        owned = tempfile.mkdtemp(prefix="eaas-metrics-")
        os.environ[MULTIPROC] = owned  # read by prometheus_client when a worker imports it
    try:
        uvicorn.run(
            "eaas.api.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level="warning",
            access_log=False,
            # uvicorn annotates int, but only hands it to asyncio.wait_for(timeout=...): a float
            timeout_graceful_shutdown=settings.grace_s,  # type: ignore[arg-type]
        )
    finally:
        if owned:
            os.environ.pop(MULTIPROC, None)
            shutil.rmtree(owned, ignore_errors=True)
