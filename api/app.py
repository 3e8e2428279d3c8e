"""The FastAPI app: routes, auth, body limits, request logging and metrics."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import audit, errors, ui
from api.audit import pages as audit_pages
from api.audit import routes as audit_routes
from api.batching import Executor
from api.errors import PayloadTooLarge, Timeout, Unauthorized, Unavailable
from api.metrics import Metrics
from api.render import explanation_png, truncate
from api.schemas import ErrorResponse, ExplainRequest, ExplainResponse, ModelList, ServedModelDetail
from api.settings import ServeSettings
from api.store import Loaded, ModelStore
from explain.errors import BadRequest, InvalidInput

log = logging.getLogger("eaas.api")
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (400, 401, 404, 413, 422, 503, 504)
}


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    store, metrics = ModelStore(list(settings.models)), Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.executor = Executor(settings, metrics)
        app.state.audit = audit.open_store(settings, metrics.registry)
        # load off the loop: /healthz answers while /readyz says "loading"
        threading.Thread(target=store.load_all, name="eaas-load", daemon=True).start()
        refresher = asyncio.create_task(_refresh(store, settings.refresh_s))
        yield
        refresher.cancel()
        app.state.executor.close()
        if app.state.audit is not None:
            app.state.audit.close()

    app = FastAPI(
        title="eaas",
        version="0.1.0",
        lifespan=lifespan,
        description="Explanations of registered models' predictions (SHAP).",
    )
    app.state.settings, app.state.store, app.state.metrics = settings, store, metrics
    errors.install(app)
    app.add_middleware(Observe)
    app.include_router(_ops_router())
    app.state.audit = None
    app.include_router(audit_routes.router, responses=ERRORS)  # before /v1/models/{name:path}
    app.include_router(_v1_router(), dependencies=[Depends(require_key)], responses=ERRORS)
    app.include_router(ui.router)  # checks API keys itself, like /v1
    app.include_router(audit_pages.router)  # stored explanations' pages, same key check
    return app


async def _refresh(store: ModelStore, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        if store.ready:
            await asyncio.to_thread(store.refresh)


class Observe:
    """Request id, one structured log line (no payloads) and metrics per request.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs about a millisecond a request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")[:64]
        rid = given or uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, state, rid, status, time.perf_counter() - start)

    @staticmethod
    def _record(scope: Scope, state: dict, rid: str, status: int, elapsed: float) -> None:
        path = getattr(scope.get("route"), "path", "unmatched")
        m: Metrics = scope["app"].state.metrics
        m.requests.labels(path, str(status)).inc()
        m.latency.labels(path).observe(elapsed)
        line = {"request_id": rid, "method": scope["method"], "route": path,
                "model": state.get("model"), "version": state.get("version"), "status": status,
                "latency_ms": round(elapsed * 1000, 2), "batch_size": state.get("instances")}
        log.info(json.dumps(line))


def require_key(request: Request) -> None:
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    # compare with every key, in constant time, so timing does not tell which prefix matched
    ok = [hmac.compare_digest(token.encode(), k.encode()) for k in keys]
    if not any(ok):
        raise Unauthorized("invalid API key")


def _ops_router() -> APIRouter:
    r = APIRouter(tags=["operations"])

    @r.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @r.get("/readyz", responses={503: {"model": ErrorResponse}})
    def readyz(request: Request) -> dict[str, Any]:
        store: ModelStore = request.app.state.store
        if not store.ready:
            raise Unavailable(f"not ready: {store.error}", retry_after=2)
        return {"status": "ready", "models": store.names()}

    @r.get("/metrics")
    def metrics(request: Request) -> Response:
        return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")

    return r


def _store(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.store
    if not store.ready:
        raise Unavailable(f"not ready: {store.error}", retry_after=2)
    return store


def _v1_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["explanations"])

    @r.get("/models", response_model=ModelList)
    def list_models(request: Request) -> dict[str, Any]:
        store = _store(request)
        return {"models": [store.describe(n) for n in store.names()]}

    @r.get("/models/{name:path}", response_model=ServedModelDetail)
    def get_model(name: str, request: Request) -> dict[str, Any]:
        return _store(request).describe(name)

    @r.post(
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
        """Explain each instance; `name` is NAME, NAME@alias or NAME/version."""
        settings: ServeSettings = request.app.state.settings
        body = await _read_body(request, settings.max_body_bytes)
        req = _parse(body, settings)
        store = _store(request)
        # a version or alias not loaded yet means registry I/O and a model load: off the loop
        loaded = store.lookup(name) or await asyncio.to_thread(store.get, name)
        request.state.model, request.state.version = loaded.model["name"], loaded.model["version"]
        request.state.instances = len(req.instances)
        _check_instances(req, loaded, settings)
        params = req.parameters.model_dump(exclude_none=True, exclude={"top_k"})
        executor: Executor = request.app.state.executor
        try:
            out = await asyncio.wait_for(
                executor.explain(loaded, req.instances, params), settings.timeout_s
            )
        except TimeoutError:
            raise Timeout(f"explanation took longer than {settings.timeout_s:g} s") from None
        png = format == "png" or "image/png" in request.headers.get("accept", "")
        if png and len(out) != 1:
            raise BadRequest("instances: a PNG explains exactly one instance")
        rid = request.state.request_id
        ids = audit.record(request.app.state.audit, rid, loaded, req.instances, params, out)
        head = {"X-Explanation-Ids": ",".join(ids)} if ids else None
        if png:
            return Response(explanation_png(out[0], loaded), media_type="image/png", headers=head)
        k = req.parameters.top_k
        exps = [truncate(e, k) for e in out] if k else out
        if ids:
            exps = [{"id": i, **e} for i, e in zip(ids, exps, strict=True)]
        return JSONResponse(
            {
                "model": loaded.model,
                "explainer": loaded.explainer,
                "predictions": [e["prediction"] for e in out],
                "explanations": exps,
            },
            headers=head,
        )

    return r


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body: larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes, settings: ServeSettings) -> ExplainRequest:
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body: malformed JSON") from None
    if isinstance(raw, dict) and isinstance(raw.get("instances"), list):
        if len(raw["instances"]) > settings.max_instances:
            raise PayloadTooLarge(f"instances: more than {settings.max_instances}")
    try:
        req = ExplainRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = errors._location(tuple(first.get("loc", ())))
        raise InvalidInput(f"{where}: {first.get('msg', 'invalid')}") from None
    if not req.instances:
        raise InvalidInput("instances: must not be empty", field="instances")
    me = req.parameters.max_evals
    if me is not None and me > settings.max_evals_limit:
        raise InvalidInput(f"parameters.max_evals: at most {settings.max_evals_limit}")
    return req


def _check_instances(req: ExplainRequest, loaded: Loaded, settings: ServeSettings) -> None:
    """Per-instance checks before batching, so one bad request never joins others' batch."""
    cfg, source = loaded.engine.config, loaded.engine.source
    for i, inst in enumerate(req.instances):
        where = f"instances[{i}]"
        if cfg.kind == "text":
            if not isinstance(inst, str):
                raise InvalidInput(f"{where}: expected a string for a text model")
            if len(inst) > settings.max_text_chars:
                raise PayloadTooLarge(f"{where}: text longer than {settings.max_text_chars} chars")
            continue
        if not isinstance(inst, dict):
            raise InvalidInput(f"{where}: expected an object of feature -> number")
        missing = [f for f in cfg.features if f not in inst]
        if missing:
            raise InvalidInput(f"{where}.{missing[0]}: missing feature")
        extra = [f for f in inst if f not in cfg.features]
        if extra:
            raise InvalidInput(f"{where}.{extra[0]}: unexpected feature (not a model input)")
        for f, v in inst.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                if not source.accepts_nan:
                    raise InvalidInput(f"{where}.{f}: missing value and the model cannot take it")
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidInput(f"{where}.{f}: not a number")
            elif math.isinf(v):
                raise InvalidInput(f"{where}.{f}: infinite value")
