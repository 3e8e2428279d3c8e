"""REST service benchmark: prints side-by-side numbers in one run (not a test).

- p50/p95 of one tabular row explained in-process vs over HTTP, and their difference;
- throughput at 16 concurrent clients with micro-batching on vs off (black box, text, tree);
- p50 of a cache hit.

`run(quick)` returns the P4 row (bench/common.py); `--full` also prints the older figures.
Needs the demo models (`make demo`) in EAAS_HOME. Servers run as `eaas serve` subprocesses on
127.0.0.1 with 1 numeric thread; the client runs here. Usage: .venv/bin/python bench/bench_api.py
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

EAAS = str(Path(sys.executable).with_name("eaas"))
MODELS = "breast-cancer@champion,breast-cancer-mlp@champion,sentiment@champion"
CLIENTS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`eaas serve` of `models` on a free loopback port, one numeric thread; ready or raises."""

    models = MODELS

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.env = {**os.environ, "EAAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **env}
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        cmd = [EAAS, "serve", "--port", str(self.port), "--models", self.models]
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError("server not ready")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def rows(n: int, seed: int = 0) -> list[dict]:
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer(as_frame=True).data
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(x), size=n)
    noise = 1 + rng.normal(scale=1e-3, size=(n, x.shape[1]))  # unique rows: no cache hits
    return (x.iloc[idx].to_numpy() * noise).round(6).tolist(), list(x.columns)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) * 1000


def load_engine():
    from eaas.explain.pyfunc import load_explainer
    from eaas.explain.registry import configure

    configure()
    return load_explainer("models:/breast-cancer-explainer@champion")


def in_process(n: int, engine=None, seed: int = 1) -> tuple[list[float], list[dict]]:
    """One row at a time through the engine, from the same records a client sends (input
    conversion included); latencies and the results."""
    engine = engine or load_engine()
    data, cols = rows(n, seed=seed)
    out, results = [], []
    for r in data:
        rec = [dict(zip(cols, r, strict=True))]
        t = time.perf_counter()
        res = engine.explain_records(engine.check(rec))
        out.append(time.perf_counter() - t)
        results.append(res[0])
    return out, results


def lean_http(base: str, n: int, seed: int) -> tuple[list[float], list[dict]]:
    """A raw keep-alive http.client connection: what the service adds, not what httpx costs."""
    import http.client
    import json

    data, cols = rows(n, seed=seed)
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Content-Type": "application/json"}
    out, results = [], []
    try:
        for r in data:
            body = json.dumps({"instances": [dict(zip(cols, r, strict=True))]})
            t = time.perf_counter()
            conn.request("POST", "/v1/models/breast-cancer:explain", body, headers)
            res = conn.getresponse()
            payload = res.read()
            out.append(time.perf_counter() - t)
            assert res.status == 200, payload[:200]
            results.append(json.loads(payload)["explanations"][0])
    finally:
        conn.close()
    return out, results


def p4(quick: bool = False) -> list:
    """P4: HTTP p50 - in-process p50, one tree row, cache miss, lean client (interleaved)."""
    from bench.common import row

    n, rounds = (60, 3) if quick else (200, 5)
    engine = load_engine()
    local_t: list[float] = []
    http_t: list[float] = []
    worst = 0.0
    with Server(EAAS_CACHE_SIZE="0") as s:
        lean_http(s.base, 20, seed=99)  # warm the connection path
        for k in range(rounds):  # alternate, so load drift hits both sides alike
            lt, lres = in_process(n, engine, seed=10 + k)
            ht, hres = lean_http(s.base, n, seed=10 + k)
            local_t += lt
            http_t += ht
            for a, b in zip(lres, hres, strict=True):
                worst = max(worst, float(np.max(np.abs(np.subtract(a["values"], b["values"])))))
    lp50, hp50 = pct(local_t, 50), pct(http_t, 50)
    check = (f"in-process p50 {lp50:.2f} ms, HTTP p50 {hp50:.2f} ms; max |HTTP - in-process| "
             f"{worst:.1e} over {len(http_t)} rows")
    return [
        row("P4", "HTTP p50 - in-process p50, one tree row, cache miss, raw keep-alive client",
            hp50 - lp50, "ms", "<= 2", "<= 1", check + (" (equal)" if worst == 0 else " (DIFFER)")),
        row("P4-http-p95", "HTTP p95, one tree row", pct(http_t, 95), "ms", check=check),
    ]


def run(quick: bool = False) -> list:
    from bench.common import pin_threads

    pin_threads(1)
    return p4(quick)


def over_http(base: str, n: int, seed: int, repeat_first: bool = False) -> list[float]:
    data, cols = rows(n, seed=seed)
    out = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for i in range(n):
            r = data[0] if repeat_first else data[i]
            body = {"instances": [dict(zip(cols, r, strict=True))]}
            t = time.perf_counter()
            res = c.post("/v1/models/breast-cancer:explain", json=body)
            out.append(time.perf_counter() - t)
            assert res.status_code == 200, res.text
    return out[1:] if repeat_first else out


async def throughput(base: str, model: str, bodies: list[dict]) -> float:
    queue: asyncio.Queue = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)

    async def client(c: httpx.AsyncClient) -> None:
        while not queue.empty():
            res = await c.post(f"/v1/models/{model}:explain", json=queue.get_nowait())
            assert res.status_code == 200, res.text

    async with httpx.AsyncClient(base_url=base, timeout=300) as c:
        t = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(CLIENTS)))
        return len(bodies) / (time.perf_counter() - t)


def workloads() -> dict[str, tuple[str, list[dict]]]:
    data, cols = rows(96, seed=7)
    tab = [{"instances": [dict(zip(cols, r, strict=True))]} for r in data]
    texts = pd.read_parquet(
        Path(os.environ.get("EAAS_HOME", "~/.eaas")).expanduser()
        / "demo"
        / "sentiment_sample.parquet"
    )["text"].tolist()
    txt = [{"instances": [t[:200]], "parameters": {"max_evals": 64}} for t in texts[:32]]
    mlp = [{**b, "parameters": {"max_evals": 200}} for b in tab[:48]]
    return {
        "tree": ("breast-cancer", tab),
        "black box (permutation)": ("breast-cancer-mlp", mlp),
        "text (partition)": ("sentiment", txt),
    }


def main(repeats: int = 3) -> None:
    from bench.common import print_rows

    print_rows(run(quick="--quick" in sys.argv))
    if "--full" not in sys.argv:
        return
    n = 200
    local, _ = in_process(n)
    runs: dict[str, dict[str, list[float]]] = {}
    with (
        Server(EAAS_CACHE_SIZE="4096") as on,
        Server(EAAS_CACHE_SIZE="0", EAAS_MAX_BATCH="1", EAAS_BATCH_WINDOW_MS="0") as off,
    ):
        http = over_http(on.base, n, seed=1)
        hits = over_http(on.base, n, seed=2, repeat_first=True)
        # alternate on/off runs so that a noisy neighbour hurts both sides alike
        for rep in range(repeats):
            for name, (model, bodies) in workloads().items():
                for label, s in (("on", on), ("off", off)):
                    # a fresh seed per run: cache-on must not be served from its own cache
                    fresh = [
                        {**b, "parameters": {**b.get("parameters", {}), "seed": rep}}
                        for b in bodies
                    ]
                    rate = asyncio.run(throughput(s.base, model, fresh))
                    runs.setdefault(name, {}).setdefault(label, []).append(rate)
    results = {k: {lab: statistics.median(v) for lab, v in r.items()} for k, r in runs.items()}
    print(f"\n1 tabular row (tree), {n} requests     p50 ms    p95 ms")
    print(f"  in-process engine.explain      {pct(local, 50):8.2f}  {pct(local, 95):8.2f}")
    print(f"  HTTP POST :explain (miss)      {pct(http, 50):8.2f}  {pct(http, 95):8.2f}")
    print(f"  HTTP overhead (p50 difference) {pct(http, 50) - pct(local, 50):8.2f}")
    print(f"  HTTP cache hit                 {pct(hits, 50):8.2f}  {pct(hits, 95):8.2f}")
    print(
        f"\nthroughput at {CLIENTS} clients, median of {repeats} (req/s)  batching on   off  ratio"
    )
    for name, r in results.items():
        print(f"  {name:30s} {r['on']:10.1f} {r['off']:8.1f} {r['on'] / r['off']:7.2f}x")
    print(f"\nmedian of the in-process latencies: {statistics.median(local) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
