"""A short run (3 s after a 2 s warm-up) of the load benchmark (bench/bench_load.py) against a
real `eaas serve`: 16 clients, a mix of valid tabular rows, cache hits, invalid requests and
text. Asserts the two properties only (no timing): no 5xx other than 503, server RSS growth
under 10% after warm-up."""

from __future__ import annotations

from bench.bench_load import KINDS, Mix, load
from tests.api.conftest import serve_process


def test_short_load_no_5xx_and_flat_memory(built):
    env = {"EAAS_MAX_QUEUE": "64"}
    with serve_process(env, "--models", "tiny-xgb@champion,tiny-bert@champion") as api:
        mix = Mix("tiny-xgb", [f"f{i}" for i in range(5)], "tiny-bert",
                  ["the plot was really great", "dull and boring film", "a good movie"],
                  {"max_evals": 16})
        res = load(str(api.base_url).rstrip("/"), api.proc.pid, mix, seconds=3, warmup_s=2)
    assert res.server_errors == 0, res.statuses
    assert 0 not in res.statuses  # no dropped connection
    assert all(res.latencies[k] for k in KINDS)  # every kind was sent
    assert {200, 422, 400} <= set(res.statuses)
    assert res.rss_growth < 0.10, (res.rss_start, res.rss_end)
