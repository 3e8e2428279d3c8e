"""Fan-out of one heavy explanation over a Ray cluster (issue 18; not a test): one node against
two nodes of one CPU each, the numbers' equality printed beside the time.

A local Ray cluster on 127.0.0.1: a head node (1 CPU, resource `one`) and a second node (1 CPU,
resource `two`). A driver actor on the head node loads a registered explainer and explains once
alone (one node), once with its forward batches / model calls spread to a batch worker on the
second node (`api/ray_fanout.py`, what `eaas serve --ray` with EAAS_RAY_FANOUT=1 does). Rows:
- R1: a 300-word review, demo `sentiment` (MiniLM, text-permutation, default parameters; the
  read-only demo registry, not measured without it);
- R2: kernel SHAP with a 200-row background: an MLP (StandardScaler + 256x256 hidden units) on
  sklearn's breast-cancer data (30 numeric features, so the model calls are plain arrays and
  spread), trained and registered with its `kernel` explainer in a temporary registry; one
  instance, 30,000 evaluations (tolerance 0: the whole budget, 27-33 s on one node; 363 model
  calls of 81 coalitions x 200 rows, dealt in turn), seed 7; ~2 min with --quick.
Median of 3 interleaved runs each (1 with --quick). Must: two nodes <= 0.65 of one node.

Usage: PYTHONPATH=. .venv/bin/python bench/bench_ray.py [--quick] [--rows R1,R2]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
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
ROWS = ("R1", "R2")
KERNEL = {"max_evals": 30_000, "seed": 7, "tolerance": 0.0}  # R2: the whole budget, every run
KERNEL_WARM = {**KERNEL, "max_evals": 2_000}  # 25 model calls: enough to load the worker


class Driver:
    """On the head node: the registered explainer, explaining alone or with a batch worker."""

    def __init__(self, uri: str) -> None:
        from eaas.explain.pyfunc import load_explainer
        from eaas.explain.settings import CoreSettings

        self.uri = uri
        self.engine = load_explainer(uri, settings=CoreSettings())

    def explain(self, data: list[Any], params: dict, worker: Any) -> tuple[float, list]:
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


def actor_env(home: Path) -> dict[str, str]:
    """The actors' environment: the registry under `home`, one numeric thread each."""
    db = f"sqlite:///{home / 'mlflow.db'}"
    return {"EAAS_HOME": str(home), "MLFLOW_TRACKING_URI": db, "MLFLOW_REGISTRY_URI": db,
            "EAAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}  # fmt: skip


def measure(
    address: str,
    env: dict[str, str],
    uri: str,
    data: list[Any],
    params: dict,
    runs: int,
    warm: dict | None = None,
) -> dict:
    """Median seconds of one node and of two, and the max |values difference|; `warm`: the
    warm-up's parameters (default `params`), on the first instance."""
    import ray

    from eaas.api.ray_fanout import BatchWorker

    ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    try:
        driver = ray.remote(num_cpus=1, resources={"one": 1})(Driver).remote(uri)
        worker = ray.remote(num_cpus=1, resources={"two": 1})(BatchWorker).remote()
        # warm both, load the worker
        ray.get(driver.explain.remote(data[:1], params if warm is None else warm, worker))
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


def kernel_explainer(home: Path) -> tuple[str, list[dict]]:
    """R2's explainer, registered in a fresh registry under `home` (this process's MLflow
    environment restored after): its URI and the instance explained."""
    import mlflow
    import mlflow.sklearn
    import skops.io
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from eaas.explain.build import build_explainer
    from eaas.explain.registry import use_experiment

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(
        StandardScaler(), MLPClassifier((256, 256), max_iter=500, random_state=0)
    ).fit(x, y)
    saved = dict(os.environ)  # MLflow sets variables of its own (the registry URI): all back
    os.environ.update(actor_env(home))
    try:
        use_experiment("bench-ray")
        with mlflow.start_run(run_name="bench-ray-mlp"):
            mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=x.head(5),
                registered_model_name="bench-mlp",
                pip_requirements=["scikit-learn"],
                skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            )
        # its defaults explain the 200 background rows for the build's charts: a small budget
        res = build_explainer("models:/bench-mlp/1", method="kernel", background=x,
                              background_size=200, max_evals=64, seed=KERNEL["seed"])  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return res.uri, x.iloc[[100]].to_dict(orient="records")


def r1(address: str, runs: int) -> Row:
    text = review(snippets(), 300)
    got = measure(
        address, actor_env(HOME), "models:/sentiment-explainer/2", [text], {"seed": 7}, runs
    )
    return report("R1", "300-word review (sentiment, text-permutation)", got)


def r2(address: str, runs: int, home: Path, uri: str, data: list[dict]) -> Row:
    got = measure(address, actor_env(home), uri, data, KERNEL, runs, KERNEL_WARM)
    return report("R2", f"kernel, 200 background rows, {KERNEL['max_evals']:,} evaluations "
                  "(MLP 256x256, 30 features, one instance)", got)  # fmt: skip


def report(id: str, what: str, got: dict) -> Row:
    ratio = got["two"] / got["one"]
    print(
        f"# bench_ray: load {loadavg()}; {id} one node {got['one']:.2f} s, two nodes "
        f"{got['two']:.2f} s (median of {got['runs']})",
        flush=True,
    )
    return row(id, f"{what}: two nodes / one node", ratio, "x", "<= 0.65",
               check=f"one node {got['one']:.2f} s, two nodes {got['two']:.2f} s; max |values "
               f"difference| {got['diff']:g}")  # fmt: skip


def run(quick: bool = False, rows: tuple[str, ...] = ROWS) -> list[Row]:
    runs = 1 if quick else 3
    out: list[Row] = []
    demo = (HOME / "mlflow.db").exists()
    if "R1" in rows and not demo:
        why = f"no demo registry under {HOME} (run `eaas demo`)"
        out.append(Row("R1", "300-word review, two nodes / one node", float("nan"), "x",
                       "<= 0.65", check=f"not measured: {why}"))  # fmt: skip
    if not ("R2" in rows or ("R1" in rows and demo)):
        return out
    with tempfile.TemporaryDirectory(prefix="eaas-bench-ray-") as tmp:
        home = Path(tmp)
        kernel = kernel_explainer(home) if "R2" in rows else None
        address = cluster()
        try:
            if "R1" in rows and demo:
                out.append(r1(address, runs))
            if kernel is not None:
                out.append(r2(address, runs, home, *kernel))
        finally:
            ray_cli("stop", "--force")
    return sorted(out, key=lambda r: r.id)


def main() -> None:
    args = sys.argv[1:]
    rows = tuple(args[args.index("--rows") + 1].split(",")) if "--rows" in args else ROWS
    print_rows(run(quick="--quick" in args, rows=rows))


if __name__ == "__main__":
    main()
