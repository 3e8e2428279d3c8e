"""How far the sampled methods are from the Shapley values they estimate (issue 16's baseline).

S1 (text): the demo `sentiment` model's default `text` method against the exact Shapley values
of its own masking game, every coalition enumerated: the game is the positive-class
probability with the words outside the coalition masked exactly as eaas masks them
(`TextForward.masked`, runs of masked words collapsed). 16 held-out Rotten Tomatoes snippets of
8-12 players (words and punctuation marks). Printed: Spearman median / min, relative L2 error
median / max, how often the largest attribution is the exact largest, time per text.
S2 (tabular): permutation, kernel and partition at the default budget (500 evaluations)
against the interventional Shapley values over a 20-row background, enumerated over all 2^10
coalitions of a 10-feature MLP, 8 rows: Spearman min / median and relative L2 max.

The numbers are measurements, not targets met: the `must` column is issue 16's.
Needs the demo registry (`make demo`) for S1. Usage: python bench/bench_shapley.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time
from math import comb
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import pin_threads, print_rows, row  # noqa: E402

pin_threads(1)

import numpy as np  # noqa: E402


def exact_shapley(v: np.ndarray, n: int) -> np.ndarray:
    """Shapley values from v over all 2^n coalitions (index = bit mask; outputs last)."""
    masks = np.arange(2**n)
    sizes = np.array([bin(m).count("1") for m in masks])
    phi = np.zeros((n, *v.shape[1:]))
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        s = sizes[without]
        w = 1.0 / (n * np.array([comb(n - 1, k) for k in s]))
        gain = v[without | (1 << i)] - v[without]
        phi[i] = np.tensordot(w, gain, axes=(0, 0))
    return phi


def all_masks(n: int) -> np.ndarray:
    """(2^n, n) bool, row m = the bits of m."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _rel_l2(est: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(est - exact) / max(np.linalg.norm(exact), 1e-12))


def _texts(impl, want: int) -> list:
    """Held-out snippets (the corpus' last part; the demo trains on its first) with 8-12
    players, as the method's own layout splits them."""
    from bench.bench_text import snippets
    from eaas.explain.text.windows import make_layout

    found = []
    for text in reversed(snippets()):
        lay = make_layout(text, impl.fn.tokenizer, impl.fn.budget, "truncate")
        if 8 <= len(lay.spans) <= 12:
            found.append((text, lay))
        if len(found) == want:
            return found
    return found


def s1_text(quick: bool) -> list:
    from bench.bench_text import load_method
    from eaas.explain.validation import Params

    impl, _ = load_method("text")
    rho, l2, top, took = [], [], 0, []
    texts = _texts(impl, 6 if quick else 16)
    for text, lay in texts:
        n = len(lay.spans)
        v = impl.fn.masked(lay, all_masks(n), None)[:, 1]
        exact = exact_shapley(v, n)
        t = time.perf_counter()
        out = impl.explain([text], Params(500, 0, "truncate"))
        took.append(time.perf_counter() - t)
        est = np.asarray(out.values[0])[1]
        rho.append(_spearman(est, exact))
        l2.append(_rel_l2(est, exact))
        top += int(np.argmax(est) == np.argmax(exact))
    info = (f"{len(texts)} snippets of 8-12 players, default budget, "
            f"{1e3 * statistics.median(took):.0f} ms/text")
    return [
        row("S1-text-rho-median", f"Spearman vs enumerated Shapley, median: {info}",
            statistics.median(rho), "rho", ">= 0.95", ">= 0.98",
            f"min {min(rho):.3f}; largest word = exact largest in {top} of {len(texts)}"),
        row("S1-text-rho-min", "Spearman vs enumerated Shapley, min", min(rho), "rho",
            ">= 0.85", ">= 0.95", f"median {statistics.median(rho):.3f}"),
        row("S1-text-relL2", "relative L2 error vs enumerated Shapley, median",
            statistics.median(l2), "ratio", "", "", f"max {max(l2):.2f}"),
    ]


def _mlp():
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = load_breast_cancer(as_frame=True)
    x = ds.data.iloc[:, :10]
    model = make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=800, random_state=0))
    return model.fit(x, ds.target), x


def s2_tabular(quick: bool) -> list:
    from eaas.explain.engine import Engine
    from eaas.explain.source import SourceModel
    from eaas.explain.tabular.estimators import masked_values

    model, x = _mlp()
    src = SourceModel("sklearn", model, "tabular", list(x.columns), ["m", "b"], True)
    bg, rows = x.sample(20, random_state=0), x.iloc[300 : 300 + (4 if quick else 8)]
    out = []
    for method in ("permutation", "kernel", "partition"):
        engine = Engine(src, method, bg, {"max_evals": 500, "seed": 0})
        recs = engine.explain_records(engine.check(rows))
        fn, b = engine.method.fn, engine.method.bg
        rho, l2 = [], []
        for rec, xr in zip(recs, rows.to_numpy(dtype=float), strict=True):
            v = masked_values(fn, xr, all_masks(len(xr)), b)[:, 1]
            exact = exact_shapley(v, len(xr))
            rho.append(_spearman(np.array(rec["values"][1]), exact))
            l2.append(_rel_l2(np.array(rec["values"][1]), exact))
        out.append(row(
            f"S2-{method}", f"{method} vs enumerated interventional Shapley (10 features, 20 "
            f"background rows, 500 evaluations, {len(rows)} rows): Spearman min",
            min(rho), "rho", ">= 0.95", ">= 0.99",
            f"median {statistics.median(rho):.3f}, relative L2 max {max(l2):.3f}",
        ))
    return out


def run(quick: bool = False) -> list:
    return s2_tabular(quick) + s1_text(quick)


def main() -> None:
    print_rows(run("--quick" in sys.argv))


if __name__ == "__main__":
    main()
