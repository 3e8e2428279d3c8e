"""Real uvicorn servers on 127.0.0.1 (free ports) over the session's registry, driven by httpx."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

SERVED = ["tiny-xgb@champion", "tiny-mlp@champion", "tiny-bert@champion"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(**overrides) -> Iterator[httpx.Client]:
    """Start uvicorn in a thread, wait until /readyz (bounded), yield a client, stop it."""
    from eaas.api.app import create_app
    from eaas.api.settings import ServeSettings

    settings = ServeSettings(**{"models": SERVED, "port": free_port(), **overrides})
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{settings.port}"
    with httpx.Client(base_url=base, timeout=60) as client:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not become ready")
        try:
            yield client
        finally:
            server.should_exit = True
            thread.join(timeout=15)


@pytest.fixture(scope="module")
def api(built) -> Iterator[httpx.Client]:
    """The default service: micro-batching on, cache on."""
    with live_server() as client:
        yield client


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """Read one sample of the Prometheus text exposition."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in client.get("/metrics").text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if want else name):
            return float(value)
    return 0.0


@contextmanager
def serve_process(env: dict[str, str], *args: str, ready: bool = True) -> Iterator[httpx.Client]:
    """A real `eaas serve` subprocess on a free 127.0.0.1 port; yields a client (`.proc` set)."""
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    port = free_port()
    eaas = str(Path(sys.executable).with_name("eaas"))
    log = tempfile.TemporaryFile()  # a pipe nobody reads would block a chatty server
    proc = subprocess.Popen(
        [eaas, "serve", "--port", str(port), *args],
        env={**os.environ, "EAAS_NUM_THREADS": "1", **env},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    client.proc = proc  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                code = client.get("/readyz").status_code
                if code == 200 or (not ready and code == 503):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            log.seek(0)
            raise RuntimeError(f"eaas serve did not start: {log.read()[-2000:]!r}")
        yield client
    finally:
        client.close()
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture(scope="session")
def slow_mlp(built) -> str:
    """A served ref whose explanations cost tens of milliseconds a row at `max_evals` 4000: a
    copy of tiny-mlp version 1 with a permutation explainer of its own (other tests register
    faster explainers for tiny-mlp itself), for jobs that must still run when a test acts."""
    from mlflow.tracking import MlflowClient

    from eaas.explain.build import build_explainer

    mv = MlflowClient().copy_model_version("models:/tiny-mlp/1", "jobs-mlp")
    build_explainer(f"models:/jobs-mlp/{mv.version}", method="permutation", max_evals=64,
                    background_size=20)  # fmt: skip
    return f"jobs-mlp/{mv.version}"
