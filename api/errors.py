"""Service errors (each carries its status) and the one handler that renders them all.

Shape: {"error": {"code", "message"}}. Messages name the field and reason; payloads and stack
traces never reach a response.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from eaas.explain.errors import BadRequest, EaasError, InvalidInput, TooLarge

log = logging.getLogger("eaas.api")


class Unauthorized(EaasError):
    status = 401
    code = "unauthorized"


PayloadTooLarge = TooLarge  # the core's 413, under the name the service has always used


class Unavailable(EaasError):
    """Overloaded or not ready; clients should retry after `retry_after` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(EaasError):
    """The resource's state does not allow this (e.g. cancelling a job that has ended)."""

    status = 409
    code = "conflict"


class Timeout(EaasError):
    status = 504
    code = "timeout"


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _location(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(EaasError)
    async def _eaas(request: Request, exc: EaasError):
        headers = None
        if exc.status == 503:  # not ready, full, registry down: say when to come back
            headers = {"Retry-After": str(getattr(exc, "retry_after", 5))}
        request.state.error = exc.code
        return error_response(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        # pydantic errors carry the offending input: report only where and why
        first = exc.errors()[0]
        where = _location(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            return error_response(BadRequest.status, BadRequest.code, "body: malformed JSON")
        msg = f"{where}: {first.get('msg', 'invalid')}"
        return error_response(InvalidInput.status, InvalidInput.code, msg)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        return error_response(exc.status_code, code, detail)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        rid = getattr(request.state, "request_id", "-")
        log.exception("internal error request_id=%s", rid)
        return error_response(500, "internal", f"internal error (request id {rid})")
