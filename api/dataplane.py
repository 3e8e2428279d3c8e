"""The data plane: one explain request, each step once, in order.

parse (the body, bounded) -> resolve (the model, through the repository) -> check (the engine's
one rule: parameters, then instances; then the service's own limits) -> execute (the executor:
cache, micro-batching, the time budget) -> record (the explanation store) -> render (JSON or a
PNG). Routes only hand it the request. In the style of KServe's `DataPlane` and MLServer's
`handlers/dataplane.py`.

The service's own rules live here: `top_k`, the `max_evals_limit` ceiling, the request cost
limit (`max_request_cost`, priced by the engine), the body and instance-count limits.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from eaas.api import audit
from eaas.api.audit.store import ExplanationStore
from eaas.api.batching import Executor
from eaas.api.errors import PayloadTooLarge, Timeout
from eaas.api.render import explanation_png, truncate
from eaas.api.repository import Loaded, ModelRepository
from eaas.api.settings import ServeSettings
from eaas.explain.engine import Checked
from eaas.explain.errors import BadRequest, InvalidInput
from eaas.explain.validation import Params

FORMATS = ("json", "png")
REQUEST_KEYS = ("instances", "parameters")


@dataclass(frozen=True)
class Job:
    """A request that passed every check: what execute, record and render need."""

    loaded: Loaded
    instances: list[Any]  # as sent: the explanation store keeps these
    checked: Checked
    top_k: int | None
    png: bool


class DataPlane:
    """Owns the explain request from the body to the response."""

    def __init__(
        self,
        settings: ServeSettings,
        repository: ModelRepository,
        executor: Executor,
        store: ExplanationStore | None = None,
    ) -> None:
        self.settings, self.repository = settings, repository
        self.executor, self.store = executor, store

    async def explain(self, name: str, request: Request, format: str | None = None) -> Response:
        """`name` is NAME, NAME@alias or NAME/version; `format` json or png (else Accept)."""
        png = wants_png(format, request.headers.get("accept", ""))
        body = await read_body(request, self.settings.max_body_bytes)
        instances, params = parse(body, self.settings.max_instances)
        loaded = await self.resolve(name)
        request.state.model, request.state.version = loaded.model["name"], loaded.model["version"]
        request.state.instances = len(instances)
        job = self.check(loaded, instances, params, png)
        out = await self.execute(job)
        ids = self.record(request.state.request_id, job, out)
        return render(job, out, ids)

    async def resolve(self, name: str) -> Loaded:
        """The loaded explainer of `name`; a version or alias not loaded yet means registry I/O
        and a model load: off the loop."""
        repo = self.repository.require_ready()
        loaded = repo.lookup(name)
        if loaded is None:
            loaded = await asyncio.to_thread(repo.get, name)
        return loaded

    def check(
        self, loaded: Loaded, instances: list[Any], params: dict[str, Any], png: bool
    ) -> Job:
        """The engine's rule once (parameters, then instances), then the service's limits, so
        one bad request never joins others' batch."""
        params = dict(params)
        top_k = check_top_k(params.pop("top_k", None))
        engine = loaded.engine
        p = self.check_params(loaded, params)
        checked = engine.check(instances, p, max_chars=self.settings.max_text_chars)
        self.check_cost(loaded, checked)
        if png and len(checked) != 1:
            raise BadRequest("instances: a PNG explains exactly one instance")
        return Job(loaded, instances, checked, top_k, png)

    def check_params(self, loaded: Loaded, params: dict[str, Any]) -> Params:
        """The engine's parameter rule, then the service's ceiling (a parameter rule too:
        judged before any instance)."""
        p = loaded.engine.check_params(params)
        if p.max_evals > self.settings.max_evals_limit:
            where = "parameters.max_evals"
            raise InvalidInput(f"{where}: at most {self.settings.max_evals_limit}", field=where)
        return p

    def check_cost(self, loaded: Loaded, checked: Checked) -> None:
        """Refuse (413) a request whose priced work could never finish in the time budget,
        before any work starts (the engine prices text methods: words x evaluations)."""
        limit = self.settings.max_request_cost
        if not limit:
            return
        cost = loaded.engine.price(checked)
        if cost > limit:
            raise PayloadTooLarge(
                f"instances: estimated cost {cost} (words x evaluations) is over the limit "
                f"max_request_cost={limit} (EAAS_MAX_REQUEST_COST)"
            )

    async def execute(self, job: Job) -> list[dict]:
        timeout = self.settings.timeout_s
        try:
            return await asyncio.wait_for(self.executor.explain(job.loaded, job.checked), timeout)
        except TimeoutError:
            raise Timeout(f"explanation took longer than {timeout:g} s") from None

    def record(self, request_id: str | None, job: Job, out: list[dict]) -> list[str] | None:
        """Ids of the stored explanations (queued, never written on the request path)."""
        used = job.loaded.engine.used_params(job.checked.params)
        return audit.record(self.store, request_id, job.loaded, job.instances, used, out)

    def close(self) -> None:
        self.executor.close()


def wants_png(format: str | None, accept: str) -> bool:
    """?format=png, or no format and an `Accept: image/png`; 400 for an unknown format."""
    if format is not None and format not in FORMATS:
        raise BadRequest("format: must be json or png", field="format")
    return format == "png" or (format is None and "image/png" in accept)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed `limit` bytes."""
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


def parse(body: bytes, max_instances: int) -> tuple[list[Any], dict[str, Any]]:
    """Body -> (instances, parameters): 400 when not JSON, 422 when not a request, 413 when big.

    Plain checks rather than a pydantic model: the instances and parameters are judged once, by
    the engine's rule, after the model is known.
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
    if len(instances) > max_instances:
        raise PayloadTooLarge(f"instances: more than {max_instances}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput("parameters: expected an object", field="parameters")
    return instances, params


def check_top_k(top_k: Any) -> int | None:
    """The service's `top_k`: absent, or an integer of at least 1."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InvalidInput(
            "parameters.top_k: must be an integer, at least 1", field="parameters.top_k"
        )
    return top_k


def render(job: Job, out: list[dict], ids: list[str] | None) -> Response:
    """The explanations as KServe V1 style JSON (top_k applied, ids added), or the PNG."""
    head = {"X-Explanation-Ids": ",".join(ids)} if ids else None
    loaded = job.loaded
    if job.png:
        return Response(
            explanation_png(out[0], loaded.model), media_type="image/png", headers=head
        )
    exps = [truncate(e, job.top_k) for e in out] if job.top_k else out
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
