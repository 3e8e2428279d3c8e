"""Faithfulness of text explanations: ERASER's comprehensiveness and sufficiency (DeYoung et al.,
2020), as AOPC over deleting 1, 5, 10, 20 and 50% of the words, on held-out Rotten Tomatoes
reviews and the demo `sentiment` model.

For each review, the words are ranked by their attribution to the predicted class c:
- comprehensiveness: p_c(review) - p_c(review without its top k% words), higher is better;
- sufficiency: p_c(review) - p_c(only its top k% words), lower is better;
averaged over the five levels (AOPC), then over the reviews. Words are cut out of the text (what
lies between kept words stays), and the model reads the shortened text through its tokenizer.

Methods, side by side with their time per review:
- eaas' default for text (`text-permutation`, default parameters);
- shap's stock text explainer: `shap.Explainer` on the same model with shap's own Text masker over
  the model's tokenizer (default budget); its token attributions are summed per word;
- integrated gradients (eaas' `integrated-gradients`, 50 steps);
- a random order (the floor).

Needs the demo registry (`make demo`). Usage: python bench/bench_faithfulness.py [--quick]
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import pin_threads, print_rows, row  # noqa: E402

pin_threads(1)

import numpy as np  # noqa: E402

LEVELS = (0.01, 0.05, 0.1, 0.2, 0.5)
REVIEWS = 200
DEFAULT = "text-permutation"
IG_STEPS = 50  # integrated gradients: the steps docs/performance.md times (500 ran 10x longer)


def _reviews(fn, want: int) -> list:
    """Held-out snippets (the corpus' last part; the demo trains on its first), 4+ words,
    that the model reads whole."""
    from bench.bench_text import snippets
    from eaas.explain.text.windows import make_layout

    out = []
    for text in reversed(snippets()):
        lay = make_layout(text, fn.tokenizer, fn.budget, "truncate")
        if len(lay.spans) >= 4 and not lay.truncated:
            out.append(lay)
        if len(out) == want:
            break
    return out


class Model:
    """The demo model's probabilities on plain strings, through its own tokenizer."""

    def __init__(self, fn) -> None:  # noqa: ANN001 - eaas' TextForward
        self.fn = fn

    def __call__(self, texts) -> np.ndarray:  # noqa: ANN001 - shap passes arrays of str
        tok = self.fn.tokenizer
        seqs = [tok(str(t), truncation=True, max_length=self.fn.limit)["input_ids"]
                for t in texts]  # fmt: skip
        return self.fn.probs(seqs)


def _shap_stock(model: Model, lay) -> tuple[np.ndarray, np.ndarray]:
    """shap's own text explainer (Partition over the model's tokens, its default budget);
    token attributions summed into the words they start in. (classes, words)."""
    import shap

    explainer = shap.Explainer(model, shap.maskers.Text(model.fn.tokenizer), silent=True)
    sv = explainer([lay.text], silent=True)
    values = np.asarray(sv.values[0], dtype=float)  # (tokens, classes)
    words = np.zeros((values.shape[1], len(lay.spans)))
    pos = 0
    for tok, v in zip(sv.data[0], values, strict=True):
        t = str(tok).strip()
        if not t:
            continue
        at = lay.text.find(t, pos)
        if at < 0:
            continue
        pos = at + len(t)
        j = next((i for i, (a, b) in enumerate(lay.spans) if a <= at < b), None)
        if j is None:
            j = max(0, sum(1 for a, _ in lay.spans if a <= at) - 1)
        words[:, j] += v
    return words


def _aopc(model: Model, lay, scores: np.ndarray, c: int, p: float) -> tuple[float, float]:
    from eaas.explain.text.strings import masked_text

    n = len(lay.spans)
    order = np.argsort(-scores, kind="stable")
    texts = []
    for level in LEVELS:
        top = np.zeros(n, dtype=bool)
        top[order[: max(1, math.ceil(level * n))]] = True
        texts += [masked_text(lay, ~top), masked_text(lay, top)]
    q = model(texts)[:, c]
    return float(np.mean(p - q[0::2])), float(np.mean(p - q[1::2]))


def run(quick: bool = False) -> list:
    from bench.bench_text import load_method
    from eaas.explain.validation import Params

    default, _ = load_method(DEFAULT)
    ig, _ = load_method("integrated-gradients")
    model = Model(default.fn)
    reviews = _reviews(default.fn, 30 if quick else REVIEWS)
    rng = np.random.default_rng(0)
    params = Params(500, 0, "truncate", 0.05)  # the defaults (EAAS_DEFAULT_*)
    ig_params = Params(IG_STEPS, 0, "truncate")
    methods = {  # id -> (name, word scores per class)
        "eaas": (f"eaas default ({DEFAULT})",
                 lambda lay: np.asarray(default.explain([lay.text], params).values[0])),
        "shap": ("shap stock text explainer", lambda lay: _shap_stock(model, lay)),
        "ig": ("integrated gradients",
               lambda lay: np.asarray(ig.explain([lay.text], ig_params).values[0])),
        "random": ("random order", lambda lay: rng.random((2, len(lay.spans)))),
    }
    comp: dict[str, list] = {m: [] for m in methods}
    suff: dict[str, list] = {m: [] for m in methods}
    took: dict[str, list] = {m: [] for m in methods}
    for lay in reviews:
        full = model([lay.text])[0]
        c = int(np.argmax(full))
        for name, (_, explain) in methods.items():
            t = time.perf_counter()
            scores = explain(lay)
            took[name].append(time.perf_counter() - t)
            a, b = _aopc(model, lay, scores[c], c, float(full[c]))
            comp[name].append(a)
            suff[name].append(b)
    labels = {k: v[0] for k, v in methods.items()}
    return _rows(labels, comp, suff, took, len(reviews))


def _rows(labels: dict, comp: dict, suff: dict, took: dict, n: int) -> list:
    mean = {m: float(np.mean(comp[m])) for m in labels}
    out = [row("F1-comprehensiveness", f"comprehensiveness AOPC, eaas default / shap's stock text "
               f"explainer ({n} held-out reviews, deleting 1-50% of the words)",
               mean["eaas"] / mean["shap"], "ratio", ">= 1.0", ">= 1.1",
               f"eaas {mean['eaas']:.3f} vs shap {mean['shap']:.3f}")]
    for m, label in labels.items():
        out.append(row(f"F1-{m}", f"{label}: comprehensiveness AOPC (higher is more faithful)",
                       mean[m], "AOPC", "", "",
                       f"sufficiency AOPC {np.mean(suff[m]):.3f} (lower is better); "
                       f"{1e3 * statistics.median(took[m]):.0f} ms/review median"))
    return out


def main() -> None:
    print_rows(run("--quick" in sys.argv))


if __name__ == "__main__":
    main()
