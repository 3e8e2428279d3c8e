"""The whole product against a real `mlflow server` (SQLite store, served artifacts) over HTTP.

Nothing here touches the session's SQLite registry: every step is its own process with
MLFLOW_TRACKING_URI=http://127.0.0.1:PORT, as on a team's shared tracking server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url}: process exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not up in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "w") as fh:  # own process group: teardown stops the server's children too
        return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)  # fmt: skip


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[dict[str, str], Path]]:
    """`mlflow server` on a free loopback port; yields the clients' environment and a work dir."""
    d = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    url = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=url, EAAS_HOME=str(d / "client-home"), EAAS_NUM_THREADS="1",
        SPARK_LOCAL_IP=HOST, PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )  # fmt: skip
    proc = _start(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{d / 'mlflow.db'}",
         "--artifacts-destination", str(d / "artifacts"), "--serve-artifacts",
         "--host", HOST, "--port", str(port), "--workers", "1"],
        d / "mlflow.log", env,
    )  # fmt: skip
    try:
        _wait_http(f"{url}/health", proc, d / "mlflow.log", 90)
        yield env, d
    finally:
        _stop(proc)


def _run(args: list[str], env: dict[str, str], timeout: int = 240) -> str:
    r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    assert r.returncode == 0, f"{args[:3]} exit {r.returncode}:\n{r.stderr[-3000:]}"
    return r.stdout


def test_build_serve_and_batch_through_a_real_mlflow_server(server, tmp_path):
    env, d = server
    py, eaas = sys.executable, str(BIN / "eaas")
    _run([py, "-m", "tests.ops.steps", "register", str(tmp_path)], env)
    art = (tmp_path / "artifact_uri.txt").read_text()
    assert art.startswith("mlflow-artifacts:/")  # stored through the server, not a local path
    out = _run([eaas, "explainer", "build", "--model", "models:/srv-xgb@champion"], env)
    assert out.strip().splitlines()[-1] == "models:/srv-xgb-explainer/1"
    assert any((d / "artifacts").rglob("MLmodel"))  # the server's artifact root holds them
    _run([py, "-m", "tests.ops.steps", "predict", str(tmp_path)], env)
    ref = json.loads((tmp_path / "pyfunc.json").read_text())
    rows = pq.read_table(tmp_path / "rows.parquet").to_pandas()
    feats = rows.drop(columns="id")

    port = _free_port()
    api = _start([eaas, "serve", "--port", str(port), "--models", "srv-xgb@champion"],
                 tmp_path / "serve.log", env)  # fmt: skip
    try:
        _wait_http(f"http://{HOST}:{port}/readyz", api, tmp_path / "serve.log", 120)
        resp = httpx.post(
            f"http://{HOST}:{port}/v1/models/srv-xgb:explain",
            json={"instances": feats.to_dict(orient="records")},
            timeout=60,
        )
    finally:
        _stop(api)
    assert resp.status_code == 200, resp.text[:500]
    body = resp.json()
    assert body["explainer"]["name"] == "srv-xgb-explainer"
    served = [e["values"] for e in body["explanations"]]
    np.testing.assert_allclose(np.array(served), np.array(ref["values"]), rtol=0, atol=1e-12)

    summary = _run([eaas, "batch", "--model", "srv-xgb@champion", "--input",
                    str(tmp_path / "rows.parquet"), "--output", str(tmp_path / "out"),
                    "--master", "local[1]", "--partitions", "1", "--id-cols", "id"],
                   env)  # fmt: skip
    assert "rows_in=12 rows_ok=12 rows_error=0" in summary
    got = pq.read_table(tmp_path / "out").to_pandas().sort_values("id")
    assert list(got["id"]) == list(range(12))
    batch_values = np.array([np.stack(v) for v in got["values"]])
    np.testing.assert_allclose(batch_values, np.array(ref["values"]), rtol=0, atol=1e-12)
