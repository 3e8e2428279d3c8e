"""shap's Partition explainer over words: Owen values over shap's word hierarchy, not Shapley
values. Kept as the method `text` so explainers built with it (and their stored explanations)
keep their numbers; `auto` picks `text-permutation`, which converges to the Shapley values of the
same word-masking game (docs/text.md).

Players are words as a reader sees them (a word-level tokenizer drives shap's Text masker), so
word pieces never need merging afterwards and every feature is a substring of the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shap

from eaas.explain.errors import Stop
from eaas.explain.method import Capabilities
from eaas.explain.text.base import Attribution, TextMethod
from eaas.explain.text.budget import partition_evals, text_cost
from eaas.explain.text.windows import Layout, word_spans
from eaas.explain.validation import Params


class _LayoutWords:
    """Word tokenizer that returns the layout's words for its text (a truncated text keeps only
    the words the model saw, the last one possibly cut inside)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def __call__(self, s: str, return_offsets_mapping: bool = True) -> dict[str, list]:
        spans = self.layout.spans if s == self.layout.text else word_spans(s)
        out: dict[str, list] = {"input_ids": [s[a:b] for a, b in spans]}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


class _MaskMasker(shap.maskers.Text):
    """shap's Text masker (its word hierarchy), handing the model the masks themselves: the
    forward builds token ids from them instead of re-tokenizing a masked string."""

    def __call__(self, mask: np.ndarray, s: str) -> tuple[np.ndarray]:
        return (np.asarray(mask, dtype=bool).reshape(1, -1).copy(),)


class TextPartitionMethod(TextMethod):
    """shap's Partition explainer over words; deterministic; re-entrant (state lives per call).
    No standard error: Owen values are not an estimate of the Shapley values."""

    name = "text"
    capabilities = Capabilities(inputs="text", exact=False, reentrant=True)
    # shap's Partition with both contexts expands four children per node and needs thousands of
    # evaluations; one context (the rest masked) converges at 2 per word, and masked runs then
    # collapse to one mask token, so most evaluations are short texts (docs/text.md)
    context: int | None = 0

    def cost(self, data: Any, params: Params) -> int:
        return text_cost(data, lambda n: partition_evals(params.max_evals, n))

    def _attribute(self, lay: Layout, pred: np.ndarray, params: Params,
                   stop: Stop | None) -> Attribution:
        binary = self.fn.complementary  # p0 = 1 - p1: explain p1 once, class 0 is its negation

        def f(keeps: np.ndarray) -> np.ndarray:
            p = self.fn.masked(lay, keeps, stop)
            return p[:, 1] if binary else p

        masker = _MaskMasker(_LayoutWords(lay), mask_token="[MASK]", collapse_mask_token=False)
        explainer = shap.PartitionExplainer(f, masker)
        evals = partition_evals(params.max_evals, len(lay.spans))
        sv = explainer([lay.text], max_evals=evals, batch_size=self.fn.batch_size, silent=True,
                       fixed_context=self.context)
        v = np.asarray(sv.values[0], dtype=float)
        b = np.asarray(sv.base_values[0], dtype=float)
        if binary:
            base, vals = np.array([1.0 - float(b), float(b)]), np.stack([-v, v])
        else:
            base, vals = b, v.T
        return Attribution(base, vals, np.full_like(vals, np.nan), False)
