"""Text requests under load: a cost limit before any work, and a light request is not queued
behind a heavy one on the same explainer."""

from __future__ import annotations

import threading
import time

from tests import fixtures as fx
from tests.api.conftest import live_server, metric

LONG = " ".join(fx.FILL * 6)  # 60 words


def test_cost_limit_refuses_before_any_work_with_413_naming_it(built):
    with live_server(max_request_cost=5000) as client:
        r = client.post("/v1/models/tiny-bert:explain", json={"instances": [LONG] * 3})
        assert r.status_code == 413
        msg = r.json()["error"]["message"]
        assert "max_request_cost=5000" in msg and "words x evaluations" in msg
        assert LONG not in msg
        ok = client.post("/v1/models/tiny-bert:explain", json={"instances": ["great film"]})
        assert ok.status_code == 200


def test_a_light_request_runs_beside_a_heavy_one(built):
    with live_server(cache_size=0, executor_threads=2, max_request_cost=0) as client:
        heavy_done = threading.Event()
        heavy_status: list[int] = []

        def heavy() -> None:
            body = {"instances": [f"{LONG} {i}" for i in range(40)],
                    "parameters": {"max_evals": 2000}}
            heavy_status.append(client.post("/v1/models/tiny-bert:explain", json=body).status_code)
            heavy_done.set()

        t = threading.Thread(target=heavy)
        t.start()
        deadline = time.monotonic() + 60
        while metric(client, "eaas_queue_instances") < 40 and time.monotonic() < deadline:
            time.sleep(0.05)  # until the heavy request is in
        light = client.post("/v1/models/tiny-bert:explain", json={"instances": ["great film"]})
        assert light.status_code == 200
        assert not heavy_done.is_set()  # it came back while the heavy one was still running
        t.join(timeout=300)
        assert heavy_status == [200]
