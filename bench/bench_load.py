"""Load test of the REST service: 16 concurrent clients on loopback, a mix of valid tabular
rows (cache misses), cache hits, invalid requests and text, for 60 s (`quick`: 10 s).

Reports req/s, p50/p95/p99 per kind, status counts and the server's RSS after warm-up and at
the end. Goals: no 5xx other than 503 past the declared queue limit; RSS growth under 10%
after warm-up. Runs an `eaas serve` subprocess against the demo registry (read-only). The same
`load()` runs for a few seconds in tests/api/test_load.py.

Usage: EAAS_HOME=/work/demo-home .venv/bin/python -m bench.bench_load [--quick]
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

KINDS = ("tabular", "hit", "invalid", "text")
WEIGHTS = (0.45, 0.25, 0.2, 0.1)


@dataclass
class Mix:
    """What the clients send: a tabular model and its features, a text model and texts."""

    tabular: str
    features: list[str]
    text: str
    texts: list[str]
    text_params: dict = field(default_factory=lambda: {"max_evals": 32})


@dataclass
class Result:
    seconds: float
    latencies: dict[str, list[float]]
    statuses: Counter
    rss_start: int
    rss_end: int

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def server_errors(self) -> int:
        """5xx other than 503 (busy past the declared queue limit, or not ready)."""
        return sum(n for s, n in self.statuses.items() if s >= 500 and s != 503)

    @property
    def rss_growth(self) -> float:
        return (self.rss_end - self.rss_start) / self.rss_start


def rss(pid: int) -> int:
    """Resident set size in bytes (psutil if installed, else /proc)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        with open(f"/proc/{pid}/statm") as fh:
            import os

            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _body(kind: str, mix: Mix, rng: random.Random) -> tuple[str, bytes]:
    if kind == "text":
        body = {"instances": [rng.choice(mix.texts)], "parameters": mix.text_params}
        return mix.text, json.dumps(body).encode()
    if kind == "hit":
        return mix.tabular, json.dumps({"instances": [{f: 0.5 for f in mix.features}]}).encode()
    row = {f: rng.gauss(0, 1) for f in mix.features}
    if kind == "invalid":
        bad = rng.randrange(3)
        if bad == 0:
            row[mix.features[0]] = "not a number"
        elif bad == 1:
            return mix.tabular, b'{"instances": [{"oops"'
        else:
            row["no-such-feature"] = 1.0
    return mix.tabular, json.dumps({"instances": [row]}).encode()


def _client(base: str, mix: Mix, stop: float, seed: int, out: dict, statuses: Counter,
            lock: threading.Lock) -> None:
    host, port = base.removeprefix("http://").split(":")
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Content-Type": "application/json"}
    mine: dict[str, list[float]] = {k: [] for k in KINDS}
    codes: Counter = Counter()
    while time.perf_counter() < stop:
        kind = rng.choices(KINDS, WEIGHTS)[0]
        model, body = _body(kind, mix, rng)
        t = time.perf_counter()
        try:
            conn.request("POST", f"/v1/models/{model}:explain", body, headers)
            res = conn.getresponse()
            res.read()
            code = res.status
        except (OSError, http.client.HTTPException):
            code = 0  # a dropped connection: counted, never hidden
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
        mine[kind].append(time.perf_counter() - t)
        codes[code] += 1
    conn.close()
    with lock:
        for k, v in mine.items():
            out[k] += v
        statuses.update(codes)


def load(base: str, pid: int, mix: Mix, seconds: float, clients: int = 16,
         warmup_s: float = 5.0) -> Result:
    """Warm up (not counted), take RSS, run `clients` threads for `seconds`, take RSS."""
    lock = threading.Lock()

    def burst(duration: float, out: dict, statuses: Counter, seed0: int) -> None:
        stop = time.perf_counter() + duration
        threads = [threading.Thread(target=_client,
                                    args=(base, mix, stop, seed0 + i, out, statuses, lock))
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    burst(warmup_s, {k: [] for k in KINDS}, Counter(), 1000)
    start_rss = rss(pid)
    latencies: dict[str, list[float]] = {k: [] for k in KINDS}
    statuses: Counter = Counter()
    t = time.perf_counter()
    burst(seconds, latencies, statuses, 0)
    elapsed = time.perf_counter() - t
    return Result(elapsed, latencies, statuses, start_rss, rss(pid))


def rows(res: Result, label: str = "L") -> list:
    from bench.common import row

    out = [row(f"{label}-req/s", f"requests per second, 16 clients, {res.seconds:.0f} s",
               res.total / res.seconds, "req/s",
               check=f"statuses {dict(sorted(res.statuses.items()))}")]
    for k in KINDS:
        xs = res.latencies[k]
        if xs:
            p50, p95, p99 = (float(np.percentile(xs, q)) * 1000 for q in (50, 95, 99))
            out.append(row(f"{label}-{k}-p50", f"{k}: p50 (p95 {p95:.1f}, p99 {p99:.1f} ms), "
                           f"{len(xs)} requests", p50, "ms"))
    out.append(row(f"{label}-5xx", "5xx other than 503", res.server_errors, "count", "<= 0",
                   check=f"statuses {dict(sorted(res.statuses.items()))}"))
    out.append(row(f"{label}-rss-growth", "server RSS growth after warm-up", 100 * res.rss_growth,
                   "%", "<= 10", check=f"RSS {res.rss_start / 2**20:.0f} -> "
                   f"{res.rss_end / 2**20:.0f} MiB"))
    return out


def demo_mix() -> Mix:
    import os
    from pathlib import Path

    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    home = Path(os.environ.get("EAAS_HOME", "~/.eaas")).expanduser()
    texts = pd.read_parquet(home / "demo" / "sentiment_sample.parquet")["text"].tolist()
    features = list(load_breast_cancer(as_frame=True).data.columns)
    return Mix("breast-cancer", features, "sentiment", [t[:120] for t in texts[:50]])


def run(quick: bool = False) -> list:
    from bench.bench_api import Server
    from bench.common import pin_threads

    pin_threads(1)
    seconds = 10 if quick else 60
    with Server() as s:
        res = load(s.base, s.proc.pid, demo_mix(), seconds, warmup_s=5 if quick else 15)
    return rows(res)


def main() -> None:
    from bench.common import print_rows

    print_rows(run(quick="--quick" in sys.argv))


if __name__ == "__main__":
    main()
