"""Service behaviour: micro-batching, cache, auth, overload, time budget, alias refresh."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from tests import fixtures as fx
from tests.api.conftest import live_server, metric


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{f"f{j}": float(v) for j, v in enumerate(r)} for r in rng.normal(size=(n, 5))]


async def _concurrent(base: str, name: str, bodies: list[dict], headers=None) -> list:
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
        return await asyncio.gather(
            *(client.post(f"/v1/models/{name}:explain", json=b) for b in bodies)
        )


def test_concurrent_requests_are_coalesced_into_few_calls(built):
    with live_server(batch_window_ms=100, cache_size=0, executor_threads=1) as api:
        before = metric(api, "eaas_explain_batch_size_count", model="tiny-mlp")
        bodies = [{"instances": [r]} for r in _rows(8)]
        responses = asyncio.run(_concurrent(str(api.base_url), "tiny-mlp", bodies))
        assert all(r.status_code == 200 for r in responses)
        calls = metric(api, "eaas_explain_batch_size_count", model="tiny-mlp") - before
        assert 1 <= calls <= 3, calls  # 8 requests, one 100 ms window: 1 call, 2-3 if slow
        assert metric(api, "eaas_explain_batch_size_sum", model="tiny-mlp") >= 8
        # each response still carries its own instance
        got = [r.json()["explanations"][0]["data"] for r in responses]
        assert got == [list(b["instances"][0].values()) for b in bodies]


def test_identical_requests_hit_the_cache(api):
    body = {"instances": _rows(1, seed=3), "parameters": {"seed": 1}}
    hits = metric(api, "eaas_cache_total", result="hit")
    first = api.post("/v1/models/tiny-mlp:explain", json=body).json()
    second = api.post("/v1/models/tiny-mlp:explain", json=body).json()
    # each returned explanation has its own store id (docs/audit.md); the rest is the cached one
    assert first["explanations"][0].pop("id") != second["explanations"][0].pop("id")
    assert first == second
    assert metric(api, "eaas_cache_total", result="hit") == hits + 1
    other_seed = {**body, "parameters": {"seed": 2}}
    api.post("/v1/models/tiny-mlp:explain", json=other_seed)
    assert metric(api, "eaas_cache_total", result="hit") == hits + 1  # parameters are in the key


def test_api_keys(built):
    with live_server(api_keys=["k-one", "k-two"]) as api:
        assert api.get("/v1/models").status_code == 401
        wrong = api.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
        assert api.get("/v1/models", headers={"Authorization": "Basic k-one"}).status_code == 401
        for key in ("k-one", "k-two"):
            ok = api.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
        res = api.post("/v1/models/tiny-xgb:explain", json={"instances": _rows(1)})
        assert res.status_code == 401
        for open_route in ("/healthz", "/readyz", "/metrics"):
            assert api.get(open_route).status_code == 200


def test_full_queue_answers_503_with_retry_after(built):
    with live_server(max_queue=2, batch_window_ms=300, cache_size=0) as api:
        bodies = [{"instances": _rows(2, seed=s)} for s in range(4)]
        responses = asyncio.run(_concurrent(str(api.base_url), "tiny-mlp", bodies))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
        busy = next(r for r in responses if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "queue is full" in busy.text


def test_time_budget_gives_504_and_frees_the_queue(built):
    with live_server(timeout_s=0.3, cache_size=0) as api:
        # heavy enough to outlast the budget whatever the machine: 200 rows x 20,000 evaluations
        # (tolerance 0: spent in full; with a tolerance 5 features would be computed exactly)
        slow = {"instances": _rows(200), "parameters": {"max_evals": 20000, "tolerance": 0}}
        res = api.post("/v1/models/tiny-mlp:explain", json=slow)
        assert res.status_code == 504 and res.json()["error"]["code"] == "timeout"
        deadline = time.monotonic() + 120
        while metric(api, "eaas_queue_instances") > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metric(api, "eaas_queue_instances") == 0
        assert metric(api, "eaas_abandoned_batches_total") == 1  # stopped, not run to the end
        assert (
            api.post("/v1/models/tiny-xgb:explain", json={"instances": _rows(1)}).status_code == 200
        )


def test_a_moved_alias_is_picked_up(models):
    import mlflow.xgboost
    from mlflow.tracking import MlflowClient

    from eaas.explain.build import build_explainer

    for seed in (0, 1):  # two versions of a model of its own, not to disturb other tests
        x, y = fx.tabular_data(seed=seed)
        model = fx.train_xgboost(x, y)
        version = fx.register("moving-xgb", mlflow.xgboost.log_model, model, x.head(30))
        build_explainer(f"models:/moving-xgb/{version}")
    client = MlflowClient()
    client.set_registered_model_alias("moving-xgb", "moving", "1")
    with live_server(models=["moving-xgb@moving"], refresh_s=0.3) as api:
        body = {"instances": _rows(1)}
        url = "/v1/models/moving-xgb:explain"
        assert api.post(url, json=body).json()["model"]["version"] == "1"
        client.set_registered_model_alias("moving-xgb", "moving", version)
        deadline, seen = time.monotonic() + 60, "1"
        while seen == "1" and time.monotonic() < deadline:
            time.sleep(0.3)
            seen = api.post(url, json=body).json()["model"]["version"]
        assert seen == version == "2"


def test_refuses_to_serve_off_loopback_without_keys(registry):
    eaas = str(Path(sys.executable).with_name("eaas"))
    env = {k: v for k, v in os.environ.items() if k != "EAAS_API_KEYS"}
    res = subprocess.run(
        [eaas, "serve", "--host", "0.0.0.0", "--port", "8999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    msg = "error: refusing to serve on 0.0.0.0 without API keys: set EAAS_API_KEYS or bind to"
    assert res.stderr.strip().splitlines() == [f"{msg} 127.0.0.1"]
