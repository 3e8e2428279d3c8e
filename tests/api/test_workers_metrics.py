"""`eaas serve --workers 2`: /metrics reports the whole service (Prometheus multiprocess mode),
whichever worker answers the scrape."""

from __future__ import annotations

import re

import httpx

from tests.api.conftest import serve_process

N = 40


def _sample(text: str, name: str, labels: str = "") -> float:
    pat = re.compile(rf"^{re.escape(name)}(\{{{re.escape(labels)}\}})? (\S+)$", re.M)
    return sum(float(m.group(2)) for m in pat.finditer(text))


def test_two_workers_report_one_total(built):
    with serve_process({}, "--models", "tiny-xgb@champion", "--workers", "2") as api:
        base = str(api.base_url)
        for _ in range(N):  # a new connection each: the kernel spreads them over the workers
            assert httpx.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200
        scrapes = [httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text
                   for _ in range(6)]
        for text in scrapes:
            assert _sample(text, "eaas_workers") == 2  # both workers are in every scrape
            assert _sample(text, "eaas_requests_total", 'route="/healthz",status="200"') == N
