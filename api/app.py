"""The FastAPI app: routes, auth, body limits, request logging and metrics."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eaas.api import audit, errors, ui
from eaas.api.audit import pages as audit_pages
from eaas.api.audit import routes as audit_routes
from eaas.api.batching import Executor
from eaas.api.errors import PayloadTooLarge, Timeout, Unauthorized, Unavailable
from eaas.api.metrics import Metrics
from eaas.api.render import explanation_png, truncate
from eaas.api.schemas import (
    ErrorResponse,
    ExplainRequest,
    ExplainResponse,
    ModelList,
    ServedModelDetail,
)
from eaas.api.settings import ServeSettings
from eaas.api.store import Loaded, ModelStore
from eaas.explain.errors import BadRequest, InvalidInput
from eaas.explain.validation import check_tabular, check_text, invalid

log = logging.getLogger("eaas.api")
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (400, 401, 404, 413, 422, 503, 504)
}


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    store = ModelStore(list(settings.models), settings.max_loaded_explainers)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.executor = Executor(settings, metrics)
        app.state.audit = audit.open_store(settings, metrics.registry)
        stop = threading.Event()
        # load off the loop: /healthz answers while /readyz says why it is not ready yet, and
        # a registry that does not answer is retried until it does
        loader = threading.Thread(
            target=store.load_all, args=(stop, settings.registry_retry_s), name="eaas-load",
            daemon=True,
        )
        loader.start()
        refresher = asyncio.create_task(_refresh(store, settings.refresh_s))
        yield
        stop.set()
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
        if store.defaults:  # connected: re-read aliases, retry the models that failed
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
        app = scope["app"]
        m: Metrics = app.state.metrics
        m.loaded.set(len(app.state.store.engines))
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

    @r.get("/")
    def live() -> dict[str, str]:
        """KServe V1 liveness."""
        return {"status": "alive"}

    @r.get("/readyz", responses={503: {"model": ErrorResponse}})
    def readyz(request: Request) -> dict[str, Any]:
        """Ready when at least one model serves; `not_ready` names the others and why."""
        store: ModelStore = request.app.state.store
        if not store.ready:
            raise Unavailable(f"not ready: {store.error}", retry_after=2)
        return {"status": "ready", "models": store.names(), "not_ready": dict(store.problems)}

    @r.get("/metrics")
    def metrics(request: Request) -> Response:
        m: Metrics = request.app.state.metrics
        return Response(m.render(), media_type="text/plain; version=0.0.4")

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

    @r.get(
        "/models/{name:path}",
        response_model=ServedModelDetail,
        responses={503: {"description": "The model is not ready; `reason` says why."}},
    )
    def get_model(name: str, request: Request) -> Response:
        """Details, and KServe V1's `ready`; a model that cannot load is 503 with the reason."""
        detail = _store(request).describe(name)
        if detail["ready"]:
            return JSONResponse(detail)
        msg = f"model '{name}' is not ready: {detail['reason']}"
        body = {**detail, "error": {"code": Unavailable.code, "message": msg}}
        return JSONResponse(body, 503, headers={"Retry-After": "5"})

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
        if format is not None and format not in FORMATS:
            raise BadRequest("format: must be json or png", field="format")
        # parse -> resolve -> validate -> execute -> render, each once
        instances, raw_params = _parse(await _read_body(request, settings.max_body_bytes), settings)
        store = _store(request)
        # a version or alias not loaded yet means registry I/O and a model load: off the loop
        loaded = store.lookup(name) or await asyncio.to_thread(store.get, name)
        request.state.model, request.state.version = loaded.model["name"], loaded.model["version"]
        request.state.instances = len(instances)
        params, top_k = _check_params(raw_params, loaded, settings)
        data = _check_instances(instances, loaded, settings)
        executor: Executor = request.app.state.executor
        try:
            out = await asyncio.wait_for(
                executor.explain(loaded, data, params), settings.timeout_s
            )
        except TimeoutError:
            raise Timeout(f"explanation took longer than {settings.timeout_s:g} s") from None
        accept = request.headers.get("accept", "")
        png = format == "png" or (format is None and "image/png" in accept)
        if png and len(out) != 1:
            raise BadRequest("instances: a PNG explains exactly one instance")
        used = {"max_evals": params.max_evals, "seed": params.seed}
        if loaded.engine.config.kind == "text":
            used["long_text"] = params.long_text
        rid = request.state.request_id
        ids = audit.record(request.app.state.audit, rid, loaded, instances, used, out)
        head = {"X-Explanation-Ids": ",".join(ids)} if ids else None
        if png:
            return Response(explanation_png(out[0], loaded), media_type="image/png", headers=head)
        exps = [truncate(e, top_k) for e in out] if top_k else out
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


FORMATS = ("json", "png")
REQUEST_KEYS = ("instances", "parameters")


def _parse(body: bytes, settings: ServeSettings) -> tuple[list[Any], dict[str, Any]]:
    """Body -> (instances, parameters): 400 when not JSON, 422 when not a request, 413 when big.

    Plain checks rather than a pydantic model: the instances are judged once, by the core's rule,
    and the parameters by the core's `check_params`, after the model is known.
    """
    try:
        raw = json.loads(body)
    except RecursionError:  # pathologically nested: refuse it, never drop the connection
        raise BadRequest("body: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body: malformed JSON") from None
    if not isinstance(raw, dict):
        raise InvalidInput("body: expected an object with 'instances'", field="body")
    extra = [k for k in raw if k not in REQUEST_KEYS]
    if extra:
        where = str(extra[0])[:100]
        raise InvalidInput(f"{where}: unexpected field (use instances, parameters)", field=where)
    instances, params = raw.get("instances"), raw.get("parameters")
    if not isinstance(instances, list):
        msg = "missing field" if instances is None else "expected a list"
        raise InvalidInput(f"instances: {msg}", field="instances")
    if not instances:
        raise InvalidInput("instances: must not be empty", field="instances")
    if len(instances) > settings.max_instances:
        raise PayloadTooLarge(f"instances: more than {settings.max_instances}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput("parameters: expected an object", field="parameters")
    return instances, params


def _check_params(params: dict[str, Any], loaded: Loaded, settings: ServeSettings) -> tuple:
    """The core's parameter rule, plus the service's own: top_k and the max_evals ceiling."""
    params = dict(params)
    top_k = params.pop("top_k", None)
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1
    ):
        raise InvalidInput(
            "parameters.top_k: must be an integer, at least 1", field="parameters.top_k"
        )
    p = loaded.engine.check_params(params)
    if p.max_evals > settings.max_evals_limit:
        where = "parameters.max_evals"
        raise InvalidInput(f"{where}: at most {settings.max_evals_limit}", field=where)
    return p, top_k


def _check_instances(instances: list[Any], loaded: Loaded, settings: ServeSettings) -> list[Any]:
    """The core's one input rule before batching, so one bad request never joins others' batch.

    Returns what the executor takes: one float64 row per tabular instance (feature order), or
    the texts.
    """
    cfg, source = loaded.engine.config, loaded.engine.source
    if cfg.kind == "text":
        for i, inst in enumerate(instances):
            if isinstance(inst, str) and len(inst) > settings.max_text_chars:
                raise PayloadTooLarge(
                    invalid(i, "text", f"longer than {settings.max_text_chars} characters").message
                )
        return check_text(instances)
    return list(check_tabular(instances, cfg.features, source.accepts_nan))
