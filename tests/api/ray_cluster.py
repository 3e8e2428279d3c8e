"""A real local Ray cluster for the Ray tests (not a test module): a head node and a second
(worker) node on 127.0.0.1, 1 CPU each, each with its own custom resource, started with the
`ray` command line and stopped at the end whatever happens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.api.conftest import free_port

BIN = Path(sys.executable).parent
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def env() -> dict[str, str]:
    """Read when used: the session's registry variables are set by a fixture."""
    return {**os.environ, **RAY_ENV}


def ray_cli(*args: str) -> str:
    out = subprocess.run([str(BIN / "ray"), *args], env=env(), capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@contextmanager
def two_nodes(head: str = "head", worker: str = "explain") -> Iterator[str]:
    """Head (1 CPU, resource `head`) and worker (1 CPU, resource `explain`); the address."""
    port = free_port()
    common = ("--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats")
    try:
        ray_cli("start", "--head", "--port", str(port), "--include-dashboard", "false",
                "--resources", f'{{"{head}": 1}}', *common)  # fmt: skip
        ray_cli("start", "--address", f"127.0.0.1:{port}", "--resources",
                f'{{"{worker}": 1}}', *common)  # fmt: skip
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env(), capture_output=True,
                       timeout=120)  # fmt: skip


def replica_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "ServeReplica:eaas"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]
