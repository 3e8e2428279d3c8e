"""Run the service with uvicorn; refuse to listen off-loopback without API keys."""

from __future__ import annotations

import logging
import os

import uvicorn

from api.settings import ServeSettings
from explain.errors import BadRequest


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
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        access_log=False,
    )
