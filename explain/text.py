"""SHAP for text classifiers: Partition over words, and Integrated Gradients (Captum).

Players are words as a reader sees them (a word-level tokenizer drives shap's Text masker), so
word pieces never need merging afterwards and every feature is a substring of the input.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import shap
import torch

from explain.errors import Stop, UnsupportedModel
from explain.schema import Explanations
from explain.source import SourceModel
from explain.validation import Params

_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


class WordTokenizer:
    """Words and punctuation with character offsets, in the shape shap's Text masker expects."""

    def __call__(self, s: str, return_offsets_mapping: bool = True) -> dict[str, list]:
        spans = [m.span() for m in _WORD.finditer(s)]
        out: dict[str, list] = {"input_ids": [s[a:b] for a, b in spans]}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


class TextClassifier:
    """Batched class probabilities of a transformers sequence classifier."""

    def __init__(self, source: SourceModel, max_length: int = 128, batch_size: int = 64) -> None:
        self.model = source.model
        self.tokenizer = source.components["tokenizer"]
        self.max_length = max_length
        self.batch_size = batch_size
        self.calls = 0

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )

    @torch.inference_mode()
    def __call__(self, texts: Any) -> np.ndarray:
        texts = [str(t) for t in np.asarray(texts, dtype=object).reshape(-1)]
        out = []
        for i in range(0, len(texts), self.batch_size):
            self.calls += 1
            logits = self.model(**self.encode(texts[i : i + self.batch_size])).logits
            out.append(torch.softmax(logits.float(), dim=-1).numpy())
        return np.concatenate(out).astype(float)


def _check_text(source: SourceModel, method: str) -> None:
    if source.kind != "text":
        raise UnsupportedModel(
            f"method '{method}' needs a transformers text classifier; "
            f"the model is a {source.flavor} {source.type_name}"
        )


class TextPartitionMethod:
    """shap's Partition explainer with a Text masker over words; deterministic."""

    name = "text"
    exact = False
    output_space = "probability"

    def __init__(self, source: SourceModel, background: Any = None) -> None:
        _check_text(source, "text")
        self.source = source
        self.fn = TextClassifier(source)
        mask = getattr(self.fn.tokenizer, "mask_token", None) or "..."
        self.masker = shap.maskers.Text(WordTokenizer(), mask_token=mask, collapse_mask_token=False)
        self.explainer = shap.PartitionExplainer(
            self.fn, self.masker, output_names=source.output_names
        )

    def explain(self, texts: list[str], params: Params, stop: Stop | None = None) -> Explanations:
        max_evals = params.max_evals
        pred = self.fn(texts)
        values, bases, tokens = [], np.array(pred, copy=True), []
        for i, text in enumerate(texts):
            words = WordTokenizer()(text)["input_ids"]
            if len(words) < 2:  # shap's partition tree needs two players; 0 or 1 are exact here
                if words:  # the one player's value is f(x) - f(masked)
                    bases[i] = self.fn(list(self.masker(np.zeros(1, dtype=bool), text)[0]))[0]
                values.append((pred[i] - bases[i])[:, None][:, : len(words)])
                tokens.append(list(words))
                continue
            sv = self.explainer(
                [text], max_evals=max_evals, batch_size=self.fn.batch_size, silent=True
            )
            values.append(np.asarray(sv.values[0], dtype=float).T)
            bases[i] = np.asarray(sv.base_values[0], dtype=float)
            tokens.append([str(t).strip() for t in sv.data[0]])
        return Explanations(self.source.output_names, pred, bases, values, tokens, tokens)


class IntegratedGradientsMethod:
    """Layer Integrated Gradients on the embeddings, per class, merged to words.

    Attributions of class k sum to p_k(x) - p_k(baseline) up to Captum's convergence delta,
    which is what `additivity_error` reports. The baseline replaces every word piece with [PAD]
    and keeps the special tokens. `max_evals` is the number of integration steps.
    """

    name = "integrated-gradients"
    exact = False
    output_space = "probability"

    def __init__(self, source: SourceModel, background: Any = None) -> None:
        _check_text(source, "integrated-gradients")
        from captum.attr import LayerIntegratedGradients

        self.source = source
        self.fn = TextClassifier(source)
        model = source.model
        self.lig = LayerIntegratedGradients(self._forward, model.get_input_embeddings())

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.source.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return torch.softmax(logits, dim=-1)

    def explain(self, texts: list[str], params: Params, stop: Stop | None = None) -> Explanations:
        max_evals = params.max_evals
        k = len(self.source.output_names)
        preds, bases, values, tokens = [], [], [], []
        for text in texts:
            enc = self.fn.tokenizer(
                [text],
                truncation=True,
                max_length=self.fn.max_length,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            ids, mask = enc["input_ids"], enc["attention_mask"]
            tok = self.fn.tokenizer
            special = torch.tensor(
                tok.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
            ).bool()
            pad = self.fn.tokenizer.pad_token_id or 0
            baseline = torch.where(special, ids[0], torch.full_like(ids[0], pad))[None, :]
            with torch.inference_mode():
                pred = self._forward(ids, mask)[0].numpy().astype(float)
                base = self._forward(baseline, mask)[0].numpy().astype(float)
            per_class = []
            for c in range(k):
                attr = self.lig.attribute(
                    ids,
                    baselines=baseline,
                    additional_forward_args=(mask,),
                    target=c,
                    n_steps=max(2, int(max_evals)),
                    internal_batch_size=64,
                )
                per_class.append(attr.sum(dim=-1)[0].detach().numpy().astype(float))
            words, merged = _merge_words(text, enc["offset_mapping"][0].tolist(), per_class)
            preds.append(pred)
            bases.append(base)
            values.append(merged)
            tokens.append(words)
        return Explanations(
            self.source.output_names, np.array(preds), np.array(bases), values, tokens, tokens
        )


def _merge_words(text: str, offsets: list, per_class: list[np.ndarray]):
    """Sum word-piece attributions into the words of WordTokenizer (special tokens carry 0)."""
    spans = WordTokenizer()(text)["offset_mapping"]
    merged = np.zeros((len(per_class), len(spans)))
    for j, (a, b) in enumerate(offsets):
        if a == b:  # special token: identical in input and baseline
            continue
        w = next((i for i, (s, e) in enumerate(spans) if s <= a < e), None)
        if w is not None:
            for c, attr in enumerate(per_class):
                merged[c, w] += attr[j]
    return [text[s:e] for s, e in spans], merged


def make_text(method: str, source: SourceModel):
    if method == "text":
        return TextPartitionMethod(source)
    if method == "integrated-gradients":
        return IntegratedGradientsMethod(source)
    raise UnsupportedModel(
        f"method '{method}' does not apply to a text classifier (use text or integrated-gradients)"
    )
