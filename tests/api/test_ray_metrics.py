"""/metrics summed over Ray replicas (api/ray_metrics.py): the merge of real `Metrics`
registries, the hub's bookkeeping, and a replica's scrape through the hub. No Ray is started:
the hub is the plain class, reached through a stand-in for the few `ray` calls a replica makes
(a real cluster runs in tests/api/test_ray.py)."""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eaas.api import ray_metrics
from eaas.api.metrics import Metrics
from eaas.api.ray_metrics import LIVE_S, RETIRE_S, WORKERS, MetricsHub, Pusher, attach, merge

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str | bytes, types: set[str] | None = None) -> Samples:
    """Every sample of an exposition (less `_created`), of the families of `types` if given."""
    text = text.decode() if isinstance(text, bytes) else text
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text)
            if (types is None or f.type in types) and not f.name.endswith("_created")
            for s in f.samples}  # fmt: skip


def value(text: str | bytes, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def text(m: Metrics) -> str:
    return generate_latest(m.registry).decode()


def busy(requests: int, seconds: list[float], queue: int, queued_jobs: int) -> Metrics:
    """A replica's metrics after some work."""
    m = Metrics()
    m.requests.labels("/v1/models/a:explain", "200").inc(requests)
    for s in seconds:
        m.latency.labels("/v1/models/a:explain").observe(s)
    m.batch_size.labels("a").observe(requests)
    m.queue.set(queue)
    m.jobs.labels("queued").set(queued_jobs)
    return m


@pytest.fixture
def two() -> tuple[Metrics, Metrics]:
    a = busy(3, [0.004, 0.3], queue=2, queued_jobs=4)
    b = busy(5, [0.02, 0.02, 7.0], queue=7, queued_jobs=6)
    b.requests.labels("/healthz", "200").inc(11)  # a series only one replica has
    return a, b


def summed(*texts: str) -> Samples:
    out: Samples = {}
    for t in texts:
        for key, v in samples(t, {"counter", "histogram"}).items():
            out[key] = out.get(key, 0.0) + v
    return out


def test_counters_and_histograms_are_summed(two):
    a, b = two
    merged = merge([text(a), text(b)], [])
    want = summed(text(a), text(b))
    assert samples(merged, {"counter", "histogram"}) == want
    route = "/v1/models/a:explain"
    assert value(merged, "eaas_requests_total", route=route, status="200") == 8
    assert value(merged, "eaas_requests_total", route="/healthz", status="200") == 11
    assert value(merged, "eaas_request_seconds_count", route=route) == 5
    assert value(merged, "eaas_request_seconds_bucket", route=route, le="0.025") == 3
    assert value(merged, "eaas_request_seconds_bucket", route=route, le="+Inf") == 5
    assert value(merged, "eaas_request_seconds_sum", route=route) == pytest.approx(7.344)


def test_live_gauges_summed_livemax_largest_workers_counted(two):
    a, b = two
    merged = merge([text(a), text(b)], [])
    assert value(merged, "eaas_queue_instances") == 9
    assert value(merged, "eaas_jobs", status="queued") == 6  # livemax: the store's one figure
    assert value(merged, WORKERS) == 2


def test_a_dead_replica_keeps_its_counts_not_its_gauges(two):
    a, b = two
    merged = merge([text(a)], [text(b)])
    assert samples(merged, {"counter", "histogram"}) == summed(text(a), text(b))
    assert value(merged, "eaas_queue_instances") == 2
    assert value(merged, "eaas_jobs", status="queued") == 4
    assert value(merged, WORKERS) == 1
    b.jobs.labels("running").set(1)  # a gauge series only the dead replica has: gone
    assert value(merge([text(a)], [text(b)]), "eaas_jobs", status="running") is None


def test_one_replica_is_its_own_figures_with_help_and_types_less_created(two):
    a, _ = two
    own, merged = text(a), merge([text(a)], []).decode()
    assert samples(merged) == samples(own)
    assert "_created" in own and "_created" not in merged
    heads = {line for line in own.splitlines() if line.startswith("#") and "_created" not in line}
    assert {line for line in merged.splitlines() if line.startswith("#")} == heads


def test_the_merge_reads_back_and_merges_again(two):
    """The hub folds retired replicas into one merged text: merging it again changes nothing."""
    a, b = two
    once = merge([], [text(a), text(b)]).decode()
    want = summed(text(a), text(a), text(b))  # sums of floats: in another order
    assert samples(merge([text(a)], [once]), {"counter", "histogram"}) == pytest.approx(want)


def test_livemax_is_what_metrics_declares():
    m = Metrics()
    gauges = [g for g in vars(m).values() if isinstance(g, Gauge)]
    assert {g._name for g in gauges if g._multiprocess_mode == "livemax"} == Metrics.LIVEMAX
    assert WORKERS in {g._name for g in gauges}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hub_keeps_the_latest_text_and_splits_live_from_dead():
    clock = Clock()
    hub = MetricsHub(clock)
    hub.put("r1", 2, "new")
    hub.put("r1", 1, "old")  # a late push: dropped, a replica's counts never go back
    hub.put("r2", 1, "r2")
    assert hub.split() == (["new", "r2"], [])
    clock.now += LIVE_S + 0.1
    live, dead = hub.exchange("r2", 2, "r2b")
    assert (live, dead) == (["r2b"], ["new"])


def test_hub_folds_replicas_silent_for_long_and_refuses_them(two):
    a, b = two
    clock = Clock()
    hub = MetricsHub(clock)
    hub.put("a", 1, text(a))
    clock.now += RETIRE_S + 1
    hub.put("b", 1, text(b))
    assert set(hub.texts) == {"b"}
    live, dead = hub.split()
    assert live == [text(b)] and len(dead) == 1
    assert samples(merge(live, dead), {"counter", "histogram"}) == summed(text(a), text(b))
    hub.put("a", 2, text(a))  # back after being folded: counted once already
    assert set(hub.texts) == {"b"}


class Handle:
    """What `ray.get_actor` gives a replica, calling the hub in this process."""

    def __init__(self, hub: MetricsHub) -> None:
        self.hub = hub

    def __getattr__(self, method: str) -> Any:
        return SimpleNamespace(remote=getattr(self.hub, method))


def fake_ray(monkeypatch, hub: MetricsHub | None) -> SimpleNamespace:
    def get_actor(name: str, namespace: str) -> Handle:
        assert (name, namespace) == (ray_metrics.HUB_NAME, ray_metrics.HUB_NAMESPACE)
        if hub is None:
            raise ValueError(f"Failed to look up actor with name '{name}'")
        return Handle(hub)

    ray = SimpleNamespace(is_initialized=lambda: True, get_actor=get_actor,
                          get=lambda out, timeout: out)  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", ray)
    return ray


def test_a_scrape_on_one_replica_reports_both(monkeypatch, two):
    a, b = two
    hub = MetricsHub()
    fake_ray(monkeypatch, hub)
    pa, pb = Pusher(a), Pusher(b)
    a.source, b.source = pa.render, pb.render
    pb.ask("put", 1.0)  # b's push
    b.requests.labels("/healthz", "200").inc()  # after b's push: not in a's scrape yet
    scrape = a.render()
    assert value(scrape, WORKERS) == 2
    assert value(scrape, "eaas_requests_total", route="/healthz", status="200") == 11
    assert samples(scrape, {"counter", "histogram"}) == summed(text(a), hub.texts[pb.replica][1])
    on_b = b.render()  # the replica that answers gives its own figures fresh
    assert value(on_b, "eaas_requests_total", route="/healthz", status="200") == 12
    assert value(on_b, WORKERS) == 2


def test_without_the_hub_a_replica_answers_with_its_own_figures(monkeypatch, two, caplog):
    a, _ = two
    fake_ray(monkeypatch, None)
    pusher = Pusher(a)
    a.source = pusher.render
    first, second = a.render(), a.render()
    assert samples(first) == samples(second) == samples(text(a))
    assert value(first, WORKERS) == 1
    assert sum("metrics hub unreachable" in r.getMessage() for r in caplog.records) == 1


def test_attach_pushes_in_the_background(monkeypatch, two):
    a, _ = two
    hub = MetricsHub()
    fake_ray(monkeypatch, hub)
    monkeypatch.setattr(ray_metrics, "PUSH_S", 0.05)
    pusher = attach(a)
    try:
        deadline = time.monotonic() + 10
        while pusher.replica not in hub.texts and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hub.texts[pusher.replica][1] == text(a)
        assert a.source == pusher.render
    finally:
        pusher.stopped.set()
