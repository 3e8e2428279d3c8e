"""SHAP for text classifiers: Partition over words, and Integrated Gradients
(transformers-interpret on Captum).

Players are words as a reader sees them (a word-level tokenizer drives shap's Text masker), so
word pieces never need merging afterwards and every feature is a substring of the input. A text
longer than the model's limit is either cut where the model cuts it (`long_text=truncate`, the
row says `truncated`) or explained over overlapping windows (`long_text=window`): the explained
output is then the mean of the windows' probabilities. docs/text.md explains the choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shap

from eaas.explain.errors import Stop
from eaas.explain.method import Capabilities, Method
from eaas.explain.schema import Explanations
from eaas.explain.source import SourceModel
from eaas.explain.text.budget import partition_evals, text_cost
from eaas.explain.text.forward import TextForward, check_text_model, resolve_device
from eaas.explain.text.strings import StringForward
from eaas.explain.text.windows import Layout, make_layout, word_spans
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


class TextPartitionMethod(Method):
    """shap's Partition explainer over words; deterministic; re-entrant (state lives per call)."""

    name = "text"
    capabilities = Capabilities(inputs="text", exact=False, reentrant=True)
    # shap's Partition with both contexts expands four children per node and needs thousands of
    # evaluations; one context (the rest masked) converges at 2 per word, and masked runs then
    # collapse to one mask token, so most evaluations are short texts (docs/text.md)
    context: int | None = 0

    def __init__(self, source: SourceModel, background: Any = None) -> None:
        super().__init__(source, None)
        self.fn: TextForward | StringForward
        if source.flavor != "transformers":  # any model of one string column: its predict
            self.fn = StringForward(source)
            return
        check_text_model(source, "text")
        device = resolve_device(source.settings.device)
        self.fn = TextForward(source.model, source.components["tokenizer"], device)
        self.fn.collapse = True

    @property
    def output_space(self) -> str:
        return self.fn.output_space

    def cost(self, data: Any, params: Params) -> int:
        return text_cost(data, lambda n: partition_evals(params.max_evals, n))

    def explain(self, texts: list[str], params: Params, stop: Stop | None = None) -> Explanations:
        k = self.fn.n_classes
        values, bases, preds, tokens, cut = [], [], [], [], []
        for text in texts:
            lay = make_layout(text, self.fn.tokenizer, self.fn.budget, params.long_text)
            n = len(lay.spans)
            pred = self.fn.masked(lay, np.ones((1, n), dtype=bool), stop)[0]
            if n < 2:  # shap's partition tree needs two players; 0 or 1 are exact here
                base = self.fn.masked(lay, np.zeros((1, n), dtype=bool), stop)[0] if n else pred
                vals = (pred - base)[:, None][:, :n]
            else:
                base, vals = self._partition(lay, pred, params, stop)
            preds.append(pred)
            bases.append(base)
            values.append(vals)
            tokens.append(lay.words)
            cut.append(lay.truncated)
        out_names = self.source.output_names
        return Explanations(
            out_names, np.array(preds).reshape(-1, k), np.array(bases).reshape(-1, k),
            values, tokens, tokens, cut,
        )

    def _partition(
        self, lay: Layout, pred: np.ndarray, params: Params, stop: Stop | None
    ) -> tuple[np.ndarray, np.ndarray]:
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
            return np.array([1.0 - float(b), float(b)]), np.stack([-v, v])
        return b, v.T
