"""Per-request observation: a request id, one structured log line (no payloads) and metrics."""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eaas.api.metrics import Metrics

log = logging.getLogger("eaas.api")


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
        m.loaded.set(len(app.state.repository.engines))
        m.requests.labels(path, str(status)).inc()
        m.latency.labels(path).observe(elapsed)
        line = {"request_id": rid, "method": scope["method"], "route": path,
                "model": state.get("model"), "version": state.get("version"), "status": status,
                "latency_ms": round(elapsed * 1000, 2), "batch_size": state.get("instances")}
        log.info(json.dumps(line))
