"""Fairness beside a job (issue 17; not a test): while an explanation job of 2,000 texts runs on the
demo `sentiment` model (MiniLM), how long does a one-sentence request to the same model take?

A real `eaas serve` subprocess on 127.0.0.1 serves the demo `sentiment` model from the demo
registry (read-only) with the default sharing (EAAS_EXECUTOR_THREADS=2, EAAS_JOB_THREADS=1: the
job holds one pool thread, requests keep the other), 1 numeric thread per executor thread, the
cache off (the same sentence is sent twice) and a fresh SQLite store in a temporary folder (the
demo's store is untouched), EAAS_JOB_POLL_S=0.2.

1. baseline: LIGHT one-sentence requests (distinct sentences) with no job running;
2. a job of 2,000 Rotten Tomatoes snippets (at most 40 words each) is submitted; once it runs
   and has explained an instance, its throughput alone is measured, then LIGHT one-sentence
   requests are sent one after the other (a few ms apart) while it runs: p50/p95, and the job's
   throughput meanwhile;
3. the job is cancelled (DELETE): how long until GET says `cancelled` and its done count stops.

Correctness next to the figure: one sentence + seed sent with no job running and again during the
job gives the same `values` (max |difference| 0). Per phase, the server's CPU, its busiest
threads and the whole machine's (/proc) are printed: two busy explain threads at about a core each
mean the request ran beside the job; a busy machine with the server under 2 cores means other
processes took the CPU. Bounded: at most 40 light requests per phase, about
2 minutes in all (`--quick`: 12).

Usage: PYTHONPATH=. .venv/bin/python bench/bench_jobs.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench import bench_api  # noqa: E402
from bench.bench_text import snippets  # noqa: E402
from bench.common import Row, loadavg, print_rows, row  # noqa: E402

URL = "/v1/models/sentiment@champion:explain"
JOBS_URL = "/v1/models/sentiment@champion/jobs"
SENTENCES = [
    "A warm, funny and sharply written film.",
    "The plot drags and the jokes fall flat.",
    "An uneven but often moving drama.",
    "I have rarely been this bored in a cinema.",
]
# short sentences (3 to 6 words and marks): computed exactly from every coalition, tens of
# milliseconds alone, so their latency beside the job shows the sharing, not the request's cost
SHORT = ["Loved it.", "A dull film.", "Great acting, weak plot.", "Not worth it."]
PARAMS = {"seed": 7}  # every request and the job: explicit, so the check compares like with like
CHECK_SENTENCE = "A clumsy script, saved by two fine performances."
JOB_TEXTS = 2000
MAX_WORDS = 40  # per job text; the corpus' 90th percentile is 33 words
GAP_S = 0.005  # between two light requests
TICK = os.sysconf("SC_CLK_TCK")


class Server(bench_api.Server):
    """`eaas serve` of the sentiment model only (bench_api's server serves three)."""

    models = "sentiment@champion"


def job_texts() -> list[str]:
    """2,000 Rotten Tomatoes snippets of at most MAX_WORDS words (a few of the corpus run to
    hundreds of words, over a minute each on one core: the done count would hardly move)."""
    snips = snippets()[1000:]
    return [s for s in snips if len(s.split()) <= MAX_WORDS][:JOB_TEXTS]


def demo_registry() -> str | None:
    """Why the demo registry cannot be used, or None when it is there."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    home = Path(os.environ.get("EAAS_HOME", "~/.eaas")).expanduser()
    if not (home / "mlflow.db").exists():
        return f"no demo registry at {home} (run `make demo`)"
    return None


def _ticks(stat: Path) -> int:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    return _ticks(Path(f"/proc/{pid}/stat")) / TICK


class Cpu:
    """Where the CPU went between two snapshots: the server's busiest threads and the whole
    machine (other processes included), in cores."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.snap = self._snap()

    def _snap(self) -> tuple[float, list[int], dict[str, int]]:
        head = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        jiffies = [int(x) for x in head]
        threads = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                threads[task.name] = _ticks(task / "stat")
            except (OSError, IndexError, ValueError):
                pass  # the thread ended meanwhile
        return time.perf_counter(), jiffies, threads

    def since(self) -> str:
        (t0, j0, th0), (t1, j1, th1) = self.snap, self._snap()
        wall = t1 - t0
        total = sum(j1) - sum(j0)
        idle = (j1[3] + j1[4]) - (j0[3] + j0[4])
        machine = (os.cpu_count() or 1) * (total - idle) / max(total, 1)
        busy = sorted(((th1[k] - th0.get(k, 0)) / TICK / wall for k in th1), reverse=True)
        top = ", ".join(f"{c:.2f}" for c in busy[:3])
        return f"machine {machine:.2f} of {os.cpu_count()} cores busy, server threads [{top}]"


def light(client: httpx.Client, text: str) -> tuple[float, int, list | None]:
    t = time.perf_counter()
    r = client.post(URL, json={"instances": [text], "parameters": PARAMS})
    secs = time.perf_counter() - t
    values = r.json()["explanations"][0]["values"] if r.status_code == 200 else None
    return secs, r.status_code, values


def light_phase(client: httpx.Client, pid: int, start: int, n: int,
                short: bool = False) -> dict[str, Any]:  # fmt: skip
    """n one-sentence requests, one after the other (distinct, or SHORT ones in turn: the cache
    is off); latencies, codes, server CPU."""
    lat, codes = [], []
    c0, t0, cpu = cpu_s(pid), time.perf_counter(), Cpu(pid)
    for k in range(start, start + n):
        text = SHORT[k % len(SHORT)] if short else f"{SENTENCES[k % 4]} ({k})"
        secs, code, _ = light(client, text)
        lat.append(secs)
        codes.append(code)
        time.sleep(GAP_S)
    wall = time.perf_counter() - t0
    return {"lat": lat, "ok": sum(c == 200 for c in codes), "n": n, "wall": wall,
            "cores": (cpu_s(pid) - c0) / wall, "cpu": cpu.since()}  # fmt: skip


def job_state(client: httpx.Client, job_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/jobs/{job_id}", params={"limit": 1})
    r.raise_for_status()
    return r.json()


def done(job: dict[str, Any]) -> int:
    return int(job["instances"]["done"])


def wait_running(client: httpx.Client, job_id: str, limit_s: float = 120) -> dict[str, Any]:
    """Poll until the job runs and has explained at least one instance."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        job = job_state(client, job_id)
        if job["status"] == "running" and done(job) >= 1:
            return job
        if job["status"] in ("done", "failed", "cancelled"):
            raise RuntimeError(f"job ended early: {job['status']} {job.get('error')}")
        time.sleep(0.1)
    raise RuntimeError(f"job not running with an explained instance after {limit_s:g} s")


def throughput(client: httpx.Client, job_id: str, seconds: float) -> tuple[float, int]:
    """Instances done per second over `seconds` with nothing else sent (but these GETs)."""
    a, ta = done(job_state(client, job_id)), time.perf_counter()
    time.sleep(seconds)
    b, tb = done(job_state(client, job_id)), time.perf_counter()
    return (b - a) / (tb - ta), b - a


def cancel(client: httpx.Client, job_id: str, pid: int, watch_s: float) -> dict[str, Any]:
    """DELETE the job, then watch GET (status, done count) and the server's CPU for watch_s."""
    t0 = time.perf_counter()
    r = client.delete(f"/v1/jobs/{job_id}")
    answered = time.perf_counter() - t0
    seen_cancelled = None
    last_done, last_change = done(r.json()) if r.status_code == 200 else -1, 0.0
    cpu_prev, t_prev = cpu_s(pid), time.perf_counter()
    busy_until = 0.0  # last 100 ms window in which the server used over 20% of a core
    while time.perf_counter() - t0 < watch_s:
        job = job_state(client, job_id)
        at = time.perf_counter() - t0
        if job["status"] == "cancelled" and seen_cancelled is None:
            seen_cancelled = at
        if done(job) != last_done:
            last_done, last_change = done(job), at
        time.sleep(0.1)
        cpu_now, t_now = cpu_s(pid), time.perf_counter()
        if (cpu_now - cpu_prev) / (t_now - t_prev) > 0.2:
            busy_until = t_now - t0
        cpu_prev, t_prev = cpu_now, t_now
    final = job_state(client, job_id)
    return {"code": r.status_code, "answered": answered, "cancelled_at": seen_cancelled,
            "done_stable_at": last_change, "cpu_idle_at": busy_until, "final": final}  # fmt: skip


def p(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def run(quick: bool = False) -> list[Row]:
    why = demo_registry()
    if why is not None:
        return [Row("J1-light-p95", "one-sentence p95 beside a 2,000-text job", float("nan"), "s",
                    "<= 0.5", check=f"not measured: {why}")]  # fmt: skip
    n_light = 12 if quick else 40
    alone_s = 4.0 if quick else 15.0
    texts = job_texts()
    with tempfile.TemporaryDirectory(prefix="eaas-bench-jobs-") as tmp:
        env = {"EAAS_CACHE_SIZE": "0", "EAAS_STORE_URL": f"sqlite:///{tmp}/explanations.db",
               "EAAS_EXECUTOR_THREADS": "2", "EAAS_JOB_THREADS": "1", "EAAS_JOB_POLL_S": "0.2",
               "EAAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
        with Server(**env) as srv, httpx.Client(base_url=srv.base, timeout=120) as client:
            pid = srv.proc.pid
            for k in range(3):  # warm-up: first forward passes, connection
                light(client, f"{SENTENCES[k]} (warm-up {k})")
            base = light_phase(client, pid, 0, n_light)
            base_short = light_phase(client, pid, 0, n_light, short=True)
            _, check_code0, idle_values = light(client, CHECK_SENTENCE)

            t_sub = time.perf_counter()
            r = client.post(JOBS_URL, json={"instances": texts, "parameters": PARAMS})
            if r.status_code != 202:
                raise RuntimeError(f"job submission: {r.status_code} {r.text[:300]}")
            job_id = r.json()["id"]
            wait_running(client, job_id)
            first_s = time.perf_counter() - t_sub
            cpu = Cpu(pid)
            alone, alone_n = throughput(client, job_id, alone_s)
            alone_cpu = cpu.since()

            before, tb = done(job_state(client, job_id)), time.perf_counter()
            half = n_light // 2
            busy = light_phase(client, pid, 1000, half)
            _, check_code1, job_values = light(client, CHECK_SENTENCE)
            rest = light_phase(client, pid, 1000 + half, n_light - half)
            busy_short = light_phase(client, pid, 0, n_light, short=True)
            mid = job_state(client, job_id)
            after, ta = done(mid), time.perf_counter()
            beside = (after - before) / (ta - tb)
            still_running = mid["status"] == "running"

            stop = cancel(client, job_id, pid, watch_s=3.0 if quick else 5.0)
            after_cancel = light(client, f"{SENTENCES[0]} (after cancel)")[0]

    lat = busy["lat"] + rest["lat"]
    ok = busy["ok"] + rest["ok"]
    busy_cores = (busy["cores"] * busy["wall"] + rest["cores"] * rest["wall"]) / (
        busy["wall"] + rest["wall"]
    )
    b50, b95, j50, j95 = p(base["lat"], 50), p(base["lat"], 95), p(lat, 50), p(lat, 95)
    if idle_values is None or job_values is None:
        diff_text = f"check sentence not answered ({check_code0}, {check_code1})"
    else:
        diff = float(np.max(np.abs(np.subtract(idle_values, job_values))))
        diff_text = (f"same sentence+seed during the job vs idle: max |diff| {diff:g}"
                     + ("" if diff == 0 else " MISMATCH"))  # fmt: skip
    final = stop["final"]
    cancel_s = max(stop["cancelled_at"] or float("nan"), stop["done_stable_at"])
    print(f"# bench_jobs: load {loadavg()}; baseline server CPU {base['cores']:.2f} cores, beside "
          f"the job {busy_cores:.2f} cores; first instance done {first_s:.1f} s after submission; "
          f"job alone {alone:.2f}/s ({alone_n} in {alone_s:g} s); one sentence right after the "
          f"cancel {after_cancel:.3f} s; final job {final['status']} {final['instances']}\n"
          f"# cpu: baseline {base['cpu']}; job alone {alone_cpu}; light beside the job "
          f"{busy['cpu']} / {rest['cpu']}", flush=True)  # fmt: skip
    s50, s95 = p(busy_short["lat"], 50), p(busy_short["lat"], 95)
    sb95 = p(base_short["lat"], 95)
    return [
        row(
            "J1-short-p95",
            f"short-sentence p95 beside the job ({n_light} requests; exact, 14-62 evaluations)",
            s95,
            "s",
            "<= 0.5",
            check=f"{busy_short['ok']}/{n_light} answered 200; p50 {s50:.3f} s; baseline (no "
            f"job) p95 {sb95:.3f} s; ratio p95 {s95 / sb95:.2f}x; cpu {busy_short['cpu']}",
        ),
        row(
            "J1-light-p95",
            f"one-sentence p95 beside a 2,000-text job ({n_light} requests)",
            j95,
            "s",
            "<= 0.5",
            check=f"{ok}/{n_light} answered 200; p50 {j50:.3f} s; baseline "
            f"(no job) p95 {b95:.3f} s, p50 {b50:.3f} s ({base['ok']}/{n_light} 200); ratio p95 "
            f"{j95 / b95:.2f}x, p50 {j50 / b50:.2f}x; {diff_text}",
        ),
        row(
            "J-throughput",
            "job instances done per second while the light requests ran",
            beside,
            "inst/s",
            check=f"{after - before} instances in {ta - tb:.1f} s; alone (no "
            f"requests) {alone:.2f}/s; job still running: {still_running}",
        ),
        row(
            "J-cancel",
            "DELETE to GET `cancelled` with the done count no longer moving",
            cancel_s,
            "s",
            check=f"DELETE {stop['code']} in {stop['answered']:.3f} s; GET "
            f"cancelled at {stop['cancelled_at'] or float('nan'):.3f} s; done last moved at "
            f"{stop['done_stable_at']:.3f} s (stays {done(final)}/{JOB_TEXTS}); server CPU "
            f"idle from {stop['cpu_idle_at']:.2f} s",
        ),
    ]


def main() -> None:
    print_rows(run(quick="--quick" in sys.argv))


if __name__ == "__main__":
    main()
