"""Prometheus metrics of one app (own registry, so several apps can live in one process).

Under `eaas serve --workers N` the server sets PROMETHEUS_MULTIPROC_DIR: every worker then writes
its samples to files there, and /metrics (whichever worker answers) adds them all up. On Ray
Serve (`eaas serve --ray`) the replicas' figures are added up the same way by api/ray_metrics.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    # gauges whose figure over several processes is the largest, not the sum: declared
    # multiprocess_mode="livemax" below; api/ray_metrics.py merges Ray replicas by this set
    LIVEMAX = frozenset({"eaas_jobs"})

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # gauges: summed over live workers in multiprocess mode (ignored otherwise)
        live: Literal["livesum"] = "livesum"
        self.requests = Counter(
            "eaas_requests_total", "HTTP requests", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "eaas_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_size = Histogram(
            "eaas_explain_batch_size",
            "Instances per batched explain call",
            ["model"],
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.cache = Counter(
            "eaas_cache_total", "Explanation cache lookups", ["result"], registry=r
        )
        self.abandoned = Counter(
            "eaas_abandoned_batches_total",
            "Batches stopped early: every waiter timed out",
            registry=r,
        )
        self.queue = Gauge(
            "eaas_queue_instances",
            "Instances waiting to be explained",
            registry=r,
            multiprocess_mode=live,
        )
        self.loaded = Gauge(
            "eaas_loaded_explainers",
            "Explainers held in memory",
            registry=r,
            multiprocess_mode=live,
        )
        # every process sees the same counts in the database: the largest is the figure
        self.jobs = Gauge(
            "eaas_jobs",
            "Explanation jobs by status (queued, running), as the store holds them",
            ["status"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.job_instances = Counter(
            "eaas_job_instances_total",
            "Job instances ended, by result (done: explained, error)",
            ["result"],
            registry=r,
        )
        self.workers = Gauge(
            "eaas_workers", "Worker processes reporting", registry=r, multiprocess_mode=live
        )
        self.workers.set(1)
        # on a Ray replica (api/ray_metrics.py `attach`): the figures of all replicas
        self.source: Callable[[], bytes] | None = None

    def render(self) -> bytes:
        if self.source is not None:
            return self.source()
        if multiprocess():
            from prometheus_client import multiprocess as mp

            total = CollectorRegistry()
            mp.MultiProcessCollector(total)
            return generate_latest(total)
        return generate_latest(self.registry)
