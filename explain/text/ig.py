"""Integrated Gradients for text classifiers through transformers-interpret.

transformers-interpret's `SequenceClassificationExplainer` runs Captum's LayerIntegratedGradients
on the input embeddings with a baseline that keeps the special tokens and replaces every word
piece with the padding token. Its `word_attributions` are divided by their L2 norm (not
additive), so the raw attributions (`attributions._attributions`) are used, summed over the
embedding and over each word's pieces; they add up to p(x) - p(baseline) up to Captum's
convergence delta, which `additivity_error` reports. `max_evals` is the number of integration
steps. A 2-class softmax is computed once: class 0's attributions are class 1's negated.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
import torch
from transformers_interpret import SequenceClassificationExplainer

from eaas.explain.errors import Stop, Stopped
from eaas.explain.method import Capabilities, Method
from eaas.explain.schema import Explanations
from eaas.explain.source import SourceModel
from eaas.explain.text.budget import text_cost
from eaas.explain.text.forward import TextForward, check_text_model, resolve_device
from eaas.explain.text.windows import Layout, make_layout
from eaas.explain.validation import Params

INTERNAL_BATCH = 32  # interpolation steps per forward/backward batch


class _Interpreter(SequenceClassificationExplainer):
    """One per explained window (it keeps per-call state); polls `stop` before each forward."""

    def __init__(self, fwd: TextForward, stop: Stop | None) -> None:
        super().__init__(fwd.model, fwd.tokenizer)
        self.fwd, self.stop = fwd, stop

    # transformers-interpret gives the final [SEP] token type 1 and counts positions from 0
    # (RoBERTa counts from padding_idx + 1): leave both to the model, as the prediction does
    def _make_input_reference_token_type_pair(self, input_ids, sep_idx=0):
        return None, None

    def _make_input_reference_position_id_pair(self, input_ids):
        return None, None

    def _forward(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None):
        """The selected output through the model's own head (transformers-interpret applies a
        softmax, or a sigmoid for one output, whatever the model defines)."""
        if self.stop is not None and self.stop():
            raise Stopped("explanation stopped: its time budget ran out")
        self.fwd.calls += 1
        logits = self._get_preds(input_ids, token_type_ids, position_ids, attention_mask)[0]
        out = self.fwd.activate(logits)
        self.pred_probs = out[0][self.selected_index]
        return out[:, self.selected_index]


class IntegratedGradientsMethod(Method):
    name = "integrated-gradients"
    capabilities = Capabilities(inputs="text", exact=False, reentrant=True)

    def __init__(self, source: SourceModel, background: Any = None) -> None:
        check_text_model(source, "integrated-gradients")
        super().__init__(source, None)
        device = resolve_device(source.settings.device)
        self.fn = TextForward(source.model, source.components["tokenizer"], device)

    @classmethod
    def suits(cls, source: SourceModel) -> bool:
        return source.flavor == "transformers"  # gradients need the torch model itself

    @property
    def output_space(self) -> str:
        return self.fn.output_space

    def cost(self, data: Any, params: Params) -> int:
        return text_cost(data, lambda n: max(2, int(params.max_evals)))

    def explain(self, texts: list[str], params: Params, stop: Stop | None = None) -> Explanations:
        k = self.fn.n_classes
        preds, bases, values, tokens, cut = [], [], [], [], []
        for text in texts:
            lay = make_layout(text, self.fn.tokenizer, self.fn.budget, params.long_text)
            pred, base, vals = self._one(lay, max(2, int(params.max_evals)), stop)
            preds.append(pred)
            bases.append(base)
            values.append(vals)
            tokens.append(lay.words)
            cut.append(lay.truncated)
        return Explanations(
            self.source.output_names, np.array(preds).reshape(-1, k),
            np.array(bases).reshape(-1, k), values, tokens, tokens, cut,
            # gradients, not an estimate of Shapley values: no standard error to report
            errors=[np.full(np.shape(v), np.nan) for v in values], met=[False] * len(values),
        )

    def _one(self, lay: Layout, steps: int, stop: Stop | None):
        """Prediction, baseline output and (classes, words) attributions, averaged over windows
        (the explained output of long_text=window is the mean of the windows' outputs)."""
        k = self.fn.n_classes
        n = len(lay.spans)
        if not lay.windows:  # no words: nothing to attribute
            p = self.fn.probs([self.fn.prefix + self.fn.suffix], stop)[0]
            return p, p, np.zeros((k, 0))
        classes = [1] if self.fn.complementary else list(range(k))
        pred, base, vals = np.zeros(k), np.zeros(k), np.zeros((k, n))
        for w in lay.windows:
            start, text = lay.window_text(w)
            ids, ref, owner = self._ids(text, start, lay)
            p = self.fn.probs([ids, ref], stop)
            pred += p[0]
            base += p[1]
            for c in classes:
                attr = self._attribute(text, c, steps, stop)
                seen = owner >= 0
                np.add.at(vals[c], owner[seen], attr[seen])
        m = len(lay.windows)
        pred, base, vals = pred / m, base / m, vals / m
        if self.fn.complementary:
            vals[0] = -vals[1]
        return pred, base, vals

    def _ids(self, text: str, start: int, lay: Layout):
        """The window's ids as transformers-interpret builds them, its baseline, and the word
        each token belongs to (special tokens go to a dropped slot)."""
        enc = self.fn.tokenizer(text, return_offsets_mapping=True)
        ids = [int(t) for t in enc["input_ids"]]
        special = self.fn.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
        starts = [a for a, _ in lay.spans]
        owner = []
        for (a, b), sp in zip(enc["offset_mapping"], special, strict=True):
            owner.append(-1 if sp or a == b else bisect.bisect_right(starts, start + a) - 1)
        ref = [t if sp else self.fn.pad_id for t, sp in zip(ids, special, strict=True)]
        return ids, ref, np.array(owner, dtype=int)

    def _attribute(self, text: str, target: int, steps: int, stop: Stop | None) -> np.ndarray:
        ti = _Interpreter(self.fn, stop)
        ti(text, index=target, n_steps=steps, internal_batch_size=INTERNAL_BATCH)
        raw = ti.attributions._attributions.sum(dim=-1)[0]
        return raw.detach().to(torch.float64).cpu().numpy()

