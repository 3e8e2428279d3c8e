"""Operations: liveness (/healthz, KServe V1's /), readiness (/readyz) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from eaas.api import deps
from eaas.api.schemas import ErrorResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/")
def live() -> dict[str, str]:
    """KServe V1 liveness."""
    return {"status": "alive"}


@router.get("/readyz", responses={503: {"model": ErrorResponse}})
def readyz(request: Request) -> dict[str, Any]:
    """Ready when at least one model serves; `not_ready` names the others and why."""
    repo = deps.repository(request)
    return {"status": "ready", "models": repo.names(), "not_ready": dict(repo.problems)}


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(deps.metrics(request).render(), media_type="text/plain; version=0.0.4")
