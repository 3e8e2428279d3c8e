"""Accepting a job: the same checks as a synchronous request, before anything is stored.

parse (the job's own body and instance limits) -> resolve (the served model, pinned to the
version it names now) -> check (parameters once, then every instance and its cost) -> store ->
202 with `Location`. By default one bad instance refuses the whole job with a 422 that names it
(`on_invalid=reject`): the client learns it while it is there, not from a failed row an hour
later. `on_invalid=row` accepts the job and ends each bad instance with its own error at once,
as `eaas batch` writes an error row.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from eaas.api.audit import read
from eaas.api.dataplane import DataPlane, parse, read_body
from eaas.api.errors import PayloadTooLarge
from eaas.api.jobs.runner import JobRunner, row_error
from eaas.api.jobs.store import JobStore, now_ms
from eaas.api.repository import Loaded
from eaas.explain.errors import BadRequest, EaasError, InvalidInput
from eaas.explain.validation import Params

ON_INVALID = ("reject", "row")


class Intake:
    def __init__(self, dataplane: DataPlane, jobs: JobStore, runner: JobRunner | None) -> None:
        self.dataplane, self.jobs, self.runner = dataplane, jobs, runner
        self.settings = dataplane.settings

    async def submit(self, name: str, request: Request, on_invalid: str = "reject",
                     preferred: bool = False) -> JSONResponse:  # fmt: skip
        """`preferred`: asked for with `Prefer: respond-async`, so the answer says it applied."""
        if on_invalid not in ON_INVALID:
            raise BadRequest("on_invalid: must be reject or row", field="on_invalid")
        body = await read_body(request, self.settings.job_max_body_bytes)
        instances, params = parse(body, self.settings.job_max_instances)
        loaded = await self.dataplane.resolve(name)
        request.state.model, request.state.version = loaded.model["name"], loaded.model["version"]
        request.state.instances = len(instances)
        p = self.check_params(loaded, params)
        errors = await asyncio.to_thread(self.check, loaded, instances, p, on_invalid)
        row = {
            "id": self.jobs.store.new_ids(1, now_ms())[0],
            "created_ms": now_ms(),
            "request_id": request.state.request_id,
            "model_name": loaded.model["name"],
            "model_version": loaded.model["version"],
            "explainer_name": loaded.explainer["name"],
            "explainer_version": loaded.explainer["version"],
            "method": loaded.explainer["method"],
            "parameters": json.dumps(params, sort_keys=True),
            "on_invalid": on_invalid,
            "timeout_s": self.settings.job_timeout_s,
        }
        # a database that does not answer is a 503, as for every store read
        job_id = await asyncio.to_thread(read, self.jobs.create, row, instances, errors)
        if self.runner is not None:
            self.runner.wake()
        job = await asyncio.to_thread(read, self.jobs.get, job_id)
        location = f"/v1/jobs/{job_id}"
        headers = {"Location": location}
        if preferred:
            headers["Preference-Applied"] = "respond-async"
        return JSONResponse({**(job or {}), "href": location}, 202, headers=headers)

    def check_params(self, loaded: Loaded, params: dict[str, Any]) -> Params:
        if "top_k" in params:
            where = "parameters.top_k"
            raise InvalidInput(f"{where}: not for jobs (their results are whole explanations)",
                               field=where)  # fmt: skip
        return self.dataplane.check_params(loaded, params)

    def check(self, loaded: Loaded, instances: list[Any], p: Params, on_invalid: str
              ) -> list[str | None]:  # fmt: skip
        """Each instance's error (None: accepted). Rejecting: the first bad one is raised."""
        engine, limit = loaded.engine, self.settings.job_max_instance_cost
        if on_invalid == "reject":
            checked = engine.check(instances, p, max_chars=self.settings.max_text_chars)
            for i in range(len(checked) if limit else 0):
                cost = engine.price(checked.part(i, i + 1))
                if cost > limit:
                    raise PayloadTooLarge(f"instances[{i}]: {_over(cost, limit)}")
            return [None] * len(instances)
        errors: list[str | None] = []
        for x in instances:
            try:
                one = engine.check([x], p, max_chars=self.settings.max_text_chars)
            except EaasError as exc:
                errors.append(row_error(exc))
                continue
            cost = engine.price(one) if limit else 0
            errors.append(_over(cost, limit) if cost > limit else None)
        return errors


def _over(cost: int, limit: int) -> str:
    return (f"estimated cost {cost} (words x evaluations) is over the limit "
            f"job_max_instance_cost={limit} (EAAS_JOB_MAX_INSTANCE_COST)")  # fmt: skip
