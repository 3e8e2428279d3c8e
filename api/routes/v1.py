"""KServe V1 style routes: the served models, one model's details, and `:explain`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from eaas.api import deps
from eaas.api.errors import Unavailable
from eaas.api.schemas import (
    ERROR_RESPONSES,
    ExplainRequest,
    ExplainResponse,
    ModelList,
    ServedModelDetail,
)
from eaas.explain.errors import BadRequest

router = APIRouter(
    prefix="/v1",
    tags=["explanations"],
    dependencies=[Depends(deps.require_key)],
    responses=ERROR_RESPONSES,
)


@router.get("/models", response_model=ModelList)
def list_models(request: Request) -> dict[str, Any]:
    repo = deps.repository(request)
    return {"models": [repo.describe(n) for n in repo.names()]}


@router.get(
    "/models/{name:path}",
    response_model=ServedModelDetail,
    responses={503: {"description": "The model is not ready; `reason` says why."}},
)
def get_model(name: str, request: Request) -> Response:
    """Details, and KServe V1's `ready`; a model that cannot load is 503 with the reason."""
    detail = deps.repository(request).describe(name)
    if detail["ready"]:
        return JSONResponse(detail)
    msg = f"model '{name}' is not ready: {detail['reason']}"
    body = {**detail, "error": {"code": Unavailable.code, "message": msg}}
    return JSONResponse(body, 503, headers={"Retry-After": "5"})


@router.post(
    "/models/{name:path}:explain",
    response_model=ExplainResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ExplainRequest.model_json_schema()}},
        }
    },
    responses={
        200: {
            "content": {"image/png": {}},
            "description": "Explanations, or a PNG "
            "bar chart with ?format=png or Accept: image/png (one instance)",
        }
    },
)
async def explain(name: str, request: Request, format: str | None = None) -> Response:
    """Explain each instance; `name` is NAME, NAME@alias or NAME/version. With
    `Prefer: respond-async` (RFC 7240) the request becomes a job: 202 and `Location`."""
    if wants_async(request.headers.get("prefer", "")):
        if format is not None:
            raise BadRequest("format: a job's results are fetched from /v1/jobs/{id}/results",
                             field="format")  # fmt: skip
        return await deps.job_intake(request).submit(name, request, preferred=True)
    return await deps.dataplane(request).explain(name, request, format)


def wants_async(prefer: str) -> bool:
    """RFC 7240: preferences are comma-separated tokens, each with optional parameters."""
    return any(p.split(";")[0].strip().lower() == "respond-async" for p in prefer.split(","))
