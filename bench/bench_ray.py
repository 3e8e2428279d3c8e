"""Fan-out of one heavy explanation over a Ray cluster (issue 18; not a test): one node against
two nodes of one CPU each, the numbers' equality printed beside the time.

A local Ray cluster on 127.0.0.1: a head node (1 CPU, resource `one`) and a second node (1 CPU,
resource `two`). A driver actor on the head node loads the demo explainer (read-only demo
registry) and explains once alone (one node), once with its forward batches / model calls
spread to a batch worker on the second node (`api/ray_fanout.py`, what `eaas serve --ray` with
EAAS_RAY_FANOUT=1 does). Rows:
- R1: a 300-word review, demo `sentiment` (MiniLM, text-permutation, default parameters);
Median of 3 interleaved runs each. Must: two nodes <= 0.65 of one node.

Usage: PYTHONPATH=. .venv/bin/python bench/bench_ray.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.bench_text import review, snippets  # noqa: E402
from bench.common import Row, loadavg, print_rows, row  # noqa: E402

BIN = Path(sys.executable).parent
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
HOME = Path(os.environ.get("EAAS_HOME", Path.home() / ".eaas"))


class Driver:
    """On the head node: the registered explainer, explaining alone or with a batch worker."""

    def __init__(self, uri: str) -> None:
        from eaas.explain.pyfunc import load_explainer
        from eaas.explain.settings import CoreSettings

        self.uri = uri
        self.engine = load_explainer(uri, settings=CoreSettings())

    def explain(self, data: list[str], params: dict, worker: Any) -> tuple[float, list]:
        from eaas.api.ray_fanout import RaySpread

        spread = RaySpread(self.engine, self.uri, [worker]) if worker is not None else None
        self.engine.method.spread_to(spread)
        checked = self.engine.check(data, params)
        t = time.perf_counter()
        out = self.engine.explain_records(checked)
        return time.perf_counter() - t, [np.asarray(r["values"], float).tolist() for r in out]


def ray_cli(*args: str) -> None:
    subprocess.run([str(BIN / "ray"), *args], env={**os.environ, **RAY_ENV}, check=True,
                   capture_output=True, timeout=120)  # fmt: skip


def cluster() -> str:
    from tests.api.conftest import free_port

    port = free_port()
    common = ("--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats")
    ray_cli("start", "--head", "--port", str(port), "--include-dashboard", "false",
            "--resources", '{"one": 1}', *common)  # fmt: skip
    ray_cli("start", "--address", f"127.0.0.1:{port}", "--resources", '{"two": 1}', *common)
    return f"127.0.0.1:{port}"


def measure(address: str, uri: str, data: list[str], params: dict, runs: int) -> dict:
    import ray

    from eaas.api.ray_fanout import BatchWorker

    env = {"EAAS_HOME": str(HOME), "MLFLOW_TRACKING_URI": f"sqlite:///{HOME / 'mlflow.db'}",
           "EAAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    try:
        driver = ray.remote(num_cpus=1, resources={"one": 1})(Driver).remote(uri)
        worker = ray.remote(num_cpus=1, resources={"two": 1})(BatchWorker).remote()
        ray.get(driver.explain.remote(data[:1], params, worker))  # warm both, load the worker
        one, two = [], []
        for _ in range(runs):  # interleaved: the machine's noise falls on both alike
            t1, v1 = ray.get(driver.explain.remote(data, params, None))
            t2, v2 = ray.get(driver.explain.remote(data, params, worker))
            one.append(t1)
            two.append(t2)
        diff = max(float(np.max(np.abs(np.subtract(a, b)))) for a, b in zip(v1, v2, strict=True))
        return {"one": statistics.median(one), "two": statistics.median(two), "diff": diff,
                "runs": runs}  # fmt: skip
    finally:
        ray.shutdown()


def run(quick: bool = False) -> list[Row]:
    if not (HOME / "mlflow.db").exists():
        why = f"no demo registry under {HOME} (run `eaas demo`)"
        return [Row("R1", "300-word review, two nodes / one node", float("nan"), "x",
                    "<= 0.65", check=f"not measured: {why}")]  # fmt: skip
    text = review(snippets(), 300)
    params = {"seed": 7}
    address = cluster()
    try:
        r1 = measure(address, "models:/sentiment-explainer/2", [text], params, 1 if quick else 3)
    finally:
        ray_cli("stop", "--force")
    ratio = r1["two"] / r1["one"]
    print(f"# bench_ray: load {loadavg()}; R1 one node {r1['one']:.2f} s, two nodes "
          f"{r1['two']:.2f} s (median of {r1['runs']})", flush=True)
    return [
        row("R1", "300-word review (sentiment, text-permutation): two nodes / one node", ratio,
            "x", "<= 0.65",
            check=f"one node {r1['one']:.2f} s, two nodes {r1['two']:.2f} s; max |values "
            f"difference| {r1['diff']:g}"),
    ]  # fmt: skip


def main() -> None:
    print_rows(run(quick="--quick" in sys.argv))


if __name__ == "__main__":
    main()
