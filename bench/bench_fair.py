"""Fairness under load (not a test): with one heavy text request in flight (100 texts of 4,000
characters), how long does a one-sentence request to the same model take?

A real `eaas serve` subprocess on 127.0.0.1 serves the demo `sentiment` model from the demo
registry (read-only), 1 numeric thread per executor thread, the cost limit off so the heavy
request is admitted (it then runs into the 30 s time budget and must stop within one forward
batch). Bounded: LIGHT requests, at most about 60 s in all.

Usage: .venv/bin/python bench/bench_fair.py [--quick]
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench import bench_api  # noqa: E402
from bench.bench_text import snippets  # noqa: E402
from bench.common import loadavg, print_rows, row  # noqa: E402

URL = "/v1/models/sentiment@champion:explain"
SENTENCES = [
    "A warm, funny and sharply written film.",
    "The plot drags and the jokes fall flat.",
    "An uneven but often moving drama.",
    "I have rarely been this bored in a cinema.",
]


def heavy_texts(snips: list[str], n: int = 100, chars: int = 4000) -> list[str]:
    out, i = [], 0
    for _ in range(n):
        text = ""
        while len(text) < chars:
            text += snips[i % len(snips)] + " "
            i += 1
        out.append(text[:chars])
    return out


def _light(client: httpx.Client, k: int) -> tuple[float, int]:
    t = time.perf_counter()
    r = client.post(URL, json={"instances": [f"{SENTENCES[k % 4]} ({k})"]})
    return time.perf_counter() - t, r.status_code


class Server(bench_api.Server):
    """`eaas serve` of the sentiment model only (bench_api's server serves three)."""

    models = "sentiment@champion"


def run(quick: bool = False) -> list:
    n_light = 10 if quick else 30
    snips = snippets()
    heavy = heavy_texts(snips)
    env = {"EAAS_MAX_REQUEST_COST": "0", "EAAS_CACHE_SIZE": "0", "EAAS_TIMEOUT_S": "30"}
    with Server(**env) as srv, httpx.Client(base_url=srv.base, timeout=120) as client:
        idle = [_light(client, 100 + k)[0] for k in range(5)]
        heavy_out: dict[str, float | int] = {}

        def send_heavy() -> None:
            t = time.perf_counter()
            r = client.post(URL, json={"instances": heavy})
            heavy_out.update(status=r.status_code, secs=time.perf_counter() - t)

        th = threading.Thread(target=send_heavy)
        th.start()
        time.sleep(1.0)  # the heavy request is in and running
        lat, codes = [], []
        for k in range(n_light):
            secs, code = _light(client, k)
            lat.append(secs)
            codes.append(code)
            time.sleep(0.2)
        th.join(timeout=120)
        after = _light(client, 999)[0]  # the heavy work stopped: the model is free again
    p95, p50 = float(np.percentile(lat, 95)), float(np.percentile(lat, 50))
    ok = sum(c == 200 for c in codes)
    print(f"# bench_fair: load {loadavg()}, heavy {heavy_out}", flush=True)
    return [
        row("F-light-p95", f"one sentence beside a heavy request, p95 of {n_light}", p95, "s",
            "<= 2", check=f"{ok}/{n_light} answered 200; p50 {p50:.3f} s; idle p50 "
            f"{np.median(idle):.3f} s"),
        row("F-heavy", "heavy request (100 x 4,000 chars) ends at the 30 s budget", float(
            heavy_out.get("secs", float("nan"))), "s", check=f"status {heavy_out.get('status')}"
            " (504 expected)"),
        row("F-after", "one sentence right after the heavy request's 504", after, "s", "<= 2",
            check="the stopped work does not hold the model"),
    ]


def main() -> None:
    print_rows(run(quick="--quick" in sys.argv))


if __name__ == "__main__":
    main()
