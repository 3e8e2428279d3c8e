"""/metrics summed over the replicas of `eaas serve --ray`, as `--workers N` sums its workers.

Each replica keeps its own Prometheus registry. The driver starts one `MetricsHub` actor (named,
so replicas find it); every replica pushes its exposition text to it each `PUSH_S`, and a scrape
on any replica pushes its own fresh text and merges what the hub holds: counters and histograms
summed over every replica ever seen (a replica gone keeps its counts, so sums never go down),
gauges over the live ones only (summed; `Metrics.LIVEMAX` gauges: the largest), `eaas_workers`
the live replicas. Without the hub (its driver gone), a replica answers with its own figures.
Ray is imported inside functions only: nothing imports this module unless `--ray` is asked for.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from eaas.api.metrics import Metrics
from eaas.explain.errors import one_line

log = logging.getLogger("eaas.api")
HUB_NAME, HUB_NAMESPACE = "eaas-metrics", "eaas"
PUSH_S = 1.0  # how often a replica pushes its figures
LIVE_S = 3 * PUSH_S  # a replica that pushed within this is live (its gauges count)
RETIRE_S = 60.0  # silent this long: its counts folded into one text, its later pushes refused
ASK_S = 2.0  # the longest a scrape waits for the hub before answering with its own figures
WORKERS = "eaas_workers"
SUMMED = frozenset({"counter", "histogram", "summary"})  # kept from every replica ever seen
Key = tuple[str, tuple[tuple[str, str], ...]]  # sample name, labels


class _Merged:
    """The families of several exposition texts, their samples combined (a collector)."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}
        self.values: dict[str, dict[Key, tuple[dict[str, str], float]]] = {}

    def add(self, family: Metric, live: bool) -> None:
        if family.name not in self.families:
            self.families[family.name] = Metric(family.name, family.documentation, family.type)
            self.values[family.name] = {}
        if family.type not in SUMMED and not live:
            return  # a gauge of a replica gone
        top = family.name in Metrics.LIVEMAX
        values = self.values[family.name]
        for s in family.samples:
            key = (s.name, tuple(s.labels.items()))
            old, value = values.get(key), s.value
            if old is not None:
                value = max(old[1], value) if top else old[1] + value
            values[key] = (s.labels, value)

    def collect(self) -> Iterable[Metric]:
        for name, family in self.families.items():
            out = Metric(family.name, family.documentation, family.type)
            for (sample, _), (labels, value) in self.values[name].items():
                out.add_sample(sample, labels, value)
            yield out


def _families(text: str) -> list[Metric]:
    """The text's families less the `_created` gauges that the text format gives each counter,
    histogram and summary (the time a series started: not a figure to add up)."""
    families = list(text_string_to_metric_families(text))
    created = {f"{f.name}_created" for f in families if f.type in SUMMED}
    return [f for f in families if f.name not in created]


def merge(live: Sequence[str], dead: Sequence[str]) -> bytes:
    """One exposition (text format 0.0.4) of the replicas' texts: counters, histograms and
    summaries summed over `live` and `dead`; gauges over `live` only, summed, or the largest
    for `Metrics.LIVEMAX`; `eaas_workers` the number of `live` texts."""
    merged = _Merged()
    for texts, is_live in ((live, True), (dead, False)):
        for text in texts:
            for family in _families(text):
                merged.add(family, is_live)
    if WORKERS in merged.values:
        merged.values[WORKERS] = {(WORKERS, ()): ({}, float(len(live)))}
    return generate_latest(merged)


class MetricsHub:
    """A Ray actor (`start_hub`): each replica's last text, in the order the replica made them
    (`seq`), and when it came by the hub's own clock (no clocks of other nodes compared)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.texts: dict[str, tuple[int, str, float]] = {}  # replica -> seq, text, when
        self.retired = ""  # the counts of replicas silent for RETIRE_S, folded into one text
        self.gone: set[str] = set()

    def put(self, replica: str, seq: int, text: str) -> None:
        """A late push (lower seq) is dropped: a replica's counts never go back."""
        now = self.clock()
        held = self.texts.get(replica)
        if replica not in self.gone and (held is None or seq > held[0]):
            self.texts[replica] = (seq, text, now)
        old = [r for r, (_, _, at) in self.texts.items() if now - at > RETIRE_S]
        if old:  # many restarts (autoscaling) would otherwise grow every scrape's work
            dead = [self.retired, *(self.texts.pop(r)[1] for r in old)]
            self.retired = merge([], dead).decode()
            self.gone.update(old)

    def split(self) -> tuple[list[str], list[str]]:
        """(live, dead) texts: live when pushed within LIVE_S."""
        now = self.clock()
        live = [text for _, text, at in self.texts.values() if now - at <= LIVE_S]
        dead = [text for _, text, at in self.texts.values() if now - at > LIVE_S]
        if self.retired:
            dead.append(self.retired)
        return live, dead

    def exchange(self, replica: str, seq: int, text: str) -> tuple[list[str], list[str]]:
        self.put(replica, seq, text)
        return self.split()


_held: list[Any] = []  # the driver's handles to the hub


def start_hub() -> Any:
    """On the driver, once Ray is initialised: the hub, named in an explicit namespace (the
    replicas run in Serve's). It shares the driver's fate; the handle is held here for the
    process's life, as an actor with no handle left is collected."""
    import ray

    actor = ray.remote(num_cpus=0)(MetricsHub)
    hub = actor.options(name=HUB_NAME, namespace=HUB_NAMESPACE, get_if_exists=True).remote()
    _held.append(hub)
    return hub


class Pusher:
    """On a replica: pushes its figures to the hub every PUSH_S (a daemon thread) and answers
    /metrics with the merge (`render`), or with its own figures while the hub is unreachable."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics, self.replica = metrics, uuid.uuid4().hex
        self.lock = threading.Lock()
        self.seq, self.alone = 0, False
        self.hub: Any = None  # the hub's handle, looked up on first use
        self.stopped = threading.Event()  # the pushes stop (they never do on a replica)

    def own(self) -> tuple[int, str]:
        with self.lock:  # seq in the order the texts are made: the hub keeps the latest
            self.seq += 1
            return self.seq, generate_latest(self.metrics.registry).decode()

    def ask(self, method: str, timeout: float) -> Any:
        """`method` of the hub with this replica's fresh text; the hub looked up again after
        a failure. Raises what Ray raises (no hub, dead hub, timeout)."""
        import ray

        try:
            if not ray.is_initialized():  # never start a Ray of our own (ray.get_actor would)
                raise RuntimeError("Ray is not initialised here")
            if self.hub is None:
                self.hub = ray.get_actor(HUB_NAME, namespace=HUB_NAMESPACE)
            out = ray.get(getattr(self.hub, method).remote(self.replica, *self.own()),
                          timeout=timeout)  # fmt: skip
        except Exception as exc:
            self.hub = None
            if not self.alone:
                log.warning("metrics hub unreachable (%s): /metrics gives this replica's "
                            "figures only", one_line(exc))  # fmt: skip
            self.alone = True
            raise
        self.alone = False
        return out

    def push_forever(self) -> None:
        while not self.stopped.wait(PUSH_S):
            try:
                self.ask("put", PUSH_S * 2)
            except Exception:
                pass  # logged by ask; tried again next time

    def render(self) -> bytes:
        try:
            live, dead = self.ask("exchange", ASK_S)
        except Exception:
            return generate_latest(self.metrics.registry)
        return merge(live, dead)


def attach(metrics: Metrics) -> Pusher:
    """On a replica, after `create_app`: its /metrics reports the sum over all replicas."""
    pusher = Pusher(metrics)
    metrics.source = pusher.render
    threading.Thread(target=pusher.push_forever, name="eaas-metrics-push", daemon=True).start()
    return pusher
