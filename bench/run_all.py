"""The benchmark suite (`make bench`): every bench module, one line per figure, a summary, JSON.

    python bench/run_all.py [--quick] [--only bench_batch,bench_api] [--out bench/results]

Each module runs in its own process (Spark sessions, registries and thread settings do not leak
from one benchmark into the next): the child imports `bench.<module>` by name and calls
`run(quick)`, which returns `bench.common.Row`s. A module that is missing, fails, has no `run()`
or overruns its time budget is reported as such in the summary, never skipped silently.
Results go to `<out>/latest.json` and a timestamped copy, with the machine (cores, CPU model,
memory) and the load average at start and end.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import Row, loadavg  # noqa: E402

# module, the target ids it answers for, its time budget in seconds (a timeout; the whole suite
# took 10.6 min on 2026-11-29 before issue 16 added bench_shapley (~3 min) and bench_faithfulness
# (15-20 min): about 30 min in all now)
MODULES: list[tuple[str, tuple[str, ...], int]] = [
    ("bench_tree", ("P1", "P2"), 170),
    ("bench_categorical", ("P10",), 100),
    ("bench_shapley", (), 300),  # issue 16: sampled methods vs enumerated Shapley (~3 min)
    ("bench_faithfulness", (), 1500),  # issue 16: ERASER AOPC on 200 reviews (15-20 min)
    ("bench_sampled", ("P8", "P9"), 140),
    ("bench_api", ("P4",), 80),
    ("bench_batch", ("P6",), 240),
    ("bench_text", (), 110),
    ("bench_fair", (), 50),
    ("bench_load", (), 110),
    ("bench_jobs", (), 300),  # issue 17: fairness beside a job
    ("bench_ray", (), 1200),  # issue 18: a review, a kernel explanation over 2 Ray nodes (~12 min)
]


@dataclass
class Outcome:
    module: str
    status: str  # ok | missing | failed | no run() | timed out
    seconds: float
    budget: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


def machine() -> dict[str, Any]:
    cpu, mem = platform.processor() or "unknown", None
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                   if ln.startswith("model name"))  # fmt: skip
        kb = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))
        mem = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": mem,
            "python": platform.python_version(), "platform": platform.platform()}  # fmt: skip


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, timeout=10)  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def child(module: str, quick: bool, dest: str) -> int:
    """In the child process: import the module by name, call run(quick), dump its rows."""
    mod = importlib.import_module(f"bench.{module}")
    if not callable(getattr(mod, "run", None)):
        Path(dest).write_text(json.dumps({"status": "no run()"}))
        return 3
    rows = mod.run(quick=quick)
    bad = [r for r in rows if not isinstance(r, Row)]
    if bad:
        raise TypeError(f"run() returned {type(bad[0]).__name__}, expected bench.common.Row")
    Path(dest).write_text(json.dumps({"status": "ok", "rows": [r.to_dict() for r in rows]}))
    return 0


def run_module(module: str, budget: int, quick: bool) -> Outcome:
    if importlib.util.find_spec(f"bench.{module}") is None:
        return Outcome(module, "missing", 0.0, budget, detail=f"no bench/{module}.py")
    with tempfile.TemporaryDirectory(prefix="eaas-bench-") as tmp:
        dest = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", module, "--dest",
               str(dest)] + (["--quick"] if quick else [])  # fmt: skip
        t0 = time.monotonic()
        # own process group: an overrun also stops what the module started (Spark's JVM, servers)
        proc = subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            log, _ = proc.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return Outcome(module, "timed out", time.monotonic() - t0, budget,
                           detail=f"over its {budget} s budget")  # fmt: skip
        seconds = time.monotonic() - t0
        got = json.loads(dest.read_text()) if dest.exists() else {}
    if got.get("status") == "ok":
        return Outcome(module, "ok", seconds, budget, got["rows"])
    if got.get("status") == "no run()":
        return Outcome(module, "no run()", seconds, budget,
                       detail="the module has no run(quick) -> list[Row]")  # fmt: skip
    tail = [ln for ln in log.strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return Outcome(module, "failed", seconds, budget,
                   detail=f"exit {proc.returncode}: {tail[0][:300]}")  # fmt: skip


def summarize(outcomes: list[Outcome]) -> tuple[list[str], dict[str, Any]]:
    """Per target id: met / missed / moonshot, or why there is no figure."""
    lines, verdicts = [], {}
    for o in outcomes:
        lines.append(f"  {o.module:<14} {o.status:<10} {o.seconds:6.0f} s of {o.budget} s budget"
                     + (f"  ({o.detail})" if o.detail else ""))  # fmt: skip
    for o in outcomes:
        ids = next(t for m, t, _ in MODULES if m == o.module)
        for target in ids:
            rows = [r for r in o.rows if r["id"] == target or r["id"].startswith(target + "-")]
            judged = [r for r in rows if r["met"] is not None]
            if not judged:
                v = {"verdict": f"no result ({o.module}: {o.status})"}
            else:
                met = all(r["met"] for r in judged)
                moon = all(r["moon"] for r in judged)
                v = {"verdict": "met" if met else "missed", "moonshot": moon,
                     "rows": {r["id"]: r["value"] for r in judged}}  # fmt: skip
            verdicts[target] = v
            extra = " (moonshot reached)" if v.get("moonshot") else ""
            lines.append(f"  {target:<4} {v['verdict']}{extra}")
    return lines, verdicts


def write(out: Path, record: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2)
    stamped = out / f"{record['started'].replace(':', '').replace('-', '')}.json"
    stamped.write_text(text)
    (out / "latest.json").write_text(text)
    return stamped


def suite(quick: bool, only: list[str] | None, out: Path) -> int:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load0, info = loadavg(), machine()
    print(f"eaas bench {'(quick) ' if quick else ''}{started} · {info['cores']} cores · "
          f"{info['cpu']} · {info['memory_gib']} GiB · load {load0}", flush=True)  # fmt: skip
    outcomes = []
    for module, _, budget in MODULES:
        if only and module not in only:
            continue
        print(f"== {module} (budget {budget} s)", flush=True)
        o = run_module(module, budget, quick)
        for r in o.rows:
            print(Row(**r).line(), flush=True)
        print(f"   {o.status} in {o.seconds:.0f} s {o.detail}".rstrip(), flush=True)
        outcomes.append(o)
    load1 = loadavg()
    lines, verdicts = summarize(outcomes)
    print(f"summary (load average at start {load0}, at end {load1}):")
    print("\n".join(lines))
    record = {"started": started, "quick": quick, "commit": _git_commit(), "machine": info,
              "loadavg_start": load0, "loadavg_end": load1, "targets": verdicts,
              "modules": [o.__dict__ for o in outcomes]}  # fmt: skip
    print(f"results: {write(out, record)} and {out / 'latest.json'}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    ap.add_argument("--only", help="comma-separated module names, e.g. bench_batch")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--dest", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.quick, a.dest)
    only = [m.strip() for m in a.only.split(",")] if a.only else None
    return suite(a.quick, only, Path(a.out))


if __name__ == "__main__":
    sys.exit(main())
