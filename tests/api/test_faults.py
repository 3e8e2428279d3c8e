"""Faults survived: a registry that answers only later, a broken explainer artifact among good
ones, SIGTERM with requests in flight (real `eaas serve` processes, a real `mlflow server`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port, live_server, serve_process

ROW = {"f0": 0.5, "f1": -1.2, "f2": 0.3, "f3": 1.1, "f4": -0.4}
FAST_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
             "EAAS_REGISTRY_RETRY_S": "0.5"}


def _wait(predicate, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def test_registry_unreachable_at_start_then_ready_without_restart(registry, built):
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # MLflow exports the session's registry URI: override it
    env = {**FAST_FAIL, "MLFLOW_TRACKING_URI": url, "MLFLOW_REGISTRY_URI": url}
    with serve_process(env, "--models", "tiny-xgb@champion", ready=False) as api:
        def unreachable():
            res = api.get("/readyz")
            assert res.status_code == 503, res.text
            msg = res.json()["error"]["message"]
            return res if msg.startswith("not ready: registry unreachable") else None

        res = _wait(unreachable, 60)  # first "loading", then the reason
        assert res.status_code == 503 and res.headers["retry-after"]
        assert api.get("/healthz").status_code == 200
        assert api.post("/v1/models/tiny-xgb:explain", json={"instances": [ROW]}).status_code == 503
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
        server = subprocess.Popen(
            [mlflow_bin, "server", "--backend-store-uri", f"sqlite:///{registry / 'mlflow.db'}",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its web workers stop with it
        )
        try:
            _wait(lambda: api.get("/readyz").status_code == 200, 150, every=0.5)
            assert api.get("/readyz").json()["models"] == ["tiny-xgb"]
            ok = api.post("/v1/models/tiny-xgb:explain", json={"instances": [ROW]})
            assert ok.status_code == 200 and ok.json()["model"] == {"name": "tiny-xgb",
                                                                    "version": "1"}
            assert api.proc.poll() is None  # the same process all along
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)


def _copy_explainer(src_name: str, new: str, artifact_dir: Path, damage) -> None:
    """Register `new` (source + explainer) whose explainer artifact is a damaged copy."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    src = client.get_model_version(src_name, "1")
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{src_name}-explainer/1",
                                                     dst_path=str(artifact_dir)))
    damage(local)
    for n in (new, f"{new}-explainer"):
        client.create_registered_model(n)
    s = client.create_model_version(new, src.source, src.run_id)
    e = client.create_model_version(f"{new}-explainer", local.as_uri())
    for k, v in {"eaas.source_model": new, "eaas.source_version": s.version}.items():
        client.set_model_version_tag(e.name, e.version, k, v)
    client.set_model_version_tag(new, s.version, "eaas.explainer", f"models:/{e.name}/{e.version}")
    client.set_registered_model_alias(new, "champion", s.version)


def test_a_broken_explainer_is_reported_while_the_others_serve(built, tmp_path):
    def corrupt(d: Path) -> None:
        (d / "artifacts" / "config.json").write_text("{ not json")

    def missing(d: Path) -> None:
        shutil.rmtree(d)

    _copy_explainer("tiny-xgb", "corrupt-xgb", tmp_path / "a", corrupt)
    _copy_explainer("tiny-xgb", "missing-xgb", tmp_path / "b", missing)
    served = ["tiny-xgb@champion", "corrupt-xgb@champion", "missing-xgb@champion"]
    with live_server(models=served) as api:
        ready = api.get("/readyz").json()
        assert ready["models"] == ["tiny-xgb"]
        assert set(ready["not_ready"]) == {"corrupt-xgb", "missing-xgb"}
        for name in ("corrupt-xgb", "missing-xgb"):
            res = api.get(f"/v1/models/{name}")
            body = res.json()
            assert res.status_code == 503 and body["ready"] is False and body["reason"]
            assert body["reason"] == ready["not_ready"][name]
            assert "Traceback" not in res.text
            exp = api.post(f"/v1/models/{name}:explain", json={"instances": [ROW]})
            assert exp.status_code == 503 and "not ready" in exp.json()["error"]["message"]
        assert api.get("/v1/models/tiny-xgb").json()["ready"] is True
        assert api.post("/v1/models/tiny-xgb:explain", json={"instances": [ROW]}).status_code \
            == 200
        assert [m["name"] for m in api.get("/v1/models").json()["models"]] == ["tiny-xgb"]


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(built):
    env = {"EAAS_GRACE_S": "30", "EAAS_CACHE_SIZE": "0", "EAAS_EXECUTOR_THREADS": "1"}
    with serve_process(env, "--models", "tiny-mlp@champion") as api:
        base = str(api.base_url)
        # ~1.5 s of work per request here (80 rows x 20000 evaluations): long enough to be seen
        # in flight whatever the machine, short enough that all three end within the grace
        rows = [{**ROW, "f0": 0.01 * i} for i in range(80)]
        slow = {"instances": rows, "parameters": {"max_evals": 20000, "tolerance": 0}}
        results: list[httpx.Response | Exception] = []

        def call(seed: int) -> None:
            try:
                body = {**slow, "parameters": {**slow["parameters"], "seed": seed}}
                results.append(httpx.post(f"{base}/v1/models/tiny-mlp:explain", json=body,
                                          timeout=60))
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                results.append(exc)

        threads = [threading.Thread(target=call, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        # all three accepted (their instances queued or running), not only the first: a
        # request still connecting when the listener closes is reset, as it should be
        _wait(lambda: _queue(api) >= 3 * len(rows), 30, every=0.05)
        sent = time.monotonic()
        api.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):  # the listener is closed: refused
            httpx.post(f"{base}/v1/models/tiny-mlp:explain", json={"instances": [ROW]},
                       timeout=5)
        for t in threads:
            t.join(60)
        assert [getattr(r, "status_code", r) for r in results] == [200, 200, 200]
        assert all(len(r.json()["explanations"]) == len(rows) for r in results)
        assert api.proc.wait(40) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        assert time.monotonic() - sent < 35  # within the grace period (+ a little)


def _queue(api: httpx.Client) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("eaas_queue_instances "):
            return float(line.split()[1])
    return 0.0


def test_readyz_reports_reasons_as_json(built):
    with live_server(models=["tiny-xgb@champion"]) as api:
        body = api.get("/readyz").json()
        assert body == {"status": "ready", "models": ["tiny-xgb"], "not_ready": {}}
        json.dumps(body)
