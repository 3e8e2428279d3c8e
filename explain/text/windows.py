"""Words, their word pieces, and what the model sees of a text: the model's own length limit.

A text becomes a `Layout`: its words (the players of the explanation, substrings of the input),
each word's token ids (tokenized once per text, never once per masked text), and the windows of
words the model is run on. Under `truncate` there is one window, cut where the model's tokenizer
cuts, and `truncated` says whether words were dropped; under `window` the windows overlap by half
and together cover every word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
UNBOUNDED = 10**6  # tokenizers without a limit report ~1e30 as model_max_length


def word_spans(text: str) -> list[tuple[int, int]]:
    """Words and punctuation marks as character spans."""
    return [m.span() for m in _WORD.finditer(text)]


class WordTokenizer:
    """Words and punctuation with character offsets, in the shape shap's Text masker expects."""

    def __call__(self, s: str, return_offsets_mapping: bool = True) -> dict[str, list]:
        spans = word_spans(s)
        out: dict[str, list] = {"input_ids": [s[a:b] for a, b in spans]}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


def model_limit(model: Any, tokenizer: Any) -> int:
    """Positions the model accepts: the tokenizer's limit capped by the position embeddings."""
    limits = [int(getattr(tokenizer, "model_max_length", UNBOUNDED) or UNBOUNDED), UNBOUNDED]
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if positions:
        # RoBERTa-style models reserve padding_idx + 1 positions before the first token
        offset = getattr(model.config, "pad_token_id", 0) or 0
        model_type = getattr(model.config, "model_type", "")
        limits.append(int(positions) - (offset + 1 if model_type in {"roberta", "xlm-roberta"}
                                         else 0))
    return min(limits)


@dataclass
class Layout:
    """One text as the explainer sees it."""

    text: str
    spans: list[tuple[int, int]]  # the words explained (players), as character spans
    pieces: list[list[int]]  # token ids of each word, special tokens excluded
    windows: list[tuple[int, int]]  # word ranges [a, b) the model is run on
    truncated: bool  # words of the text were left out (truncate only)

    @property
    def words(self) -> list[str]:
        return [self.text[a:b] for a, b in self.spans]

    def window_text(self, w: tuple[int, int]) -> tuple[int, str]:
        """Start offset and text of a window (as the tokenizer would be given it)."""
        start, end = self.spans[w[0]][0], self.spans[w[1] - 1][1]
        return start, self.text[start:end]


def _pieces(text: str, spans: list[tuple[int, int]], tokenizer: Any):
    """Token ids and end offsets per word (a token belongs to the word it starts in)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces: list[list[int]] = [[] for _ in spans]
    ends: list[list[int]] = [[] for _ in spans]
    j = 0
    for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        while j < len(spans) - 1 and spans[j][1] <= a:
            j += 1
        if spans:
            pieces[j].append(int(tid))
            ends[j].append(int(b))
    return pieces, ends


def make_layout(text: str, tokenizer: Any, budget: int, long_text: str) -> Layout:
    """`budget`: token positions left for words (the model's limit minus its special tokens).
    No tokenizer (a model that takes strings): words only, no limit, nothing truncated."""
    spans = word_spans(text)
    if tokenizer is None:
        return Layout(text, spans, [[] for _ in spans], [(0, len(spans))] if spans else [], False)
    pieces, ends = _pieces(text, spans, tokenizer)
    total = sum(len(p) for p in pieces)
    if total <= budget or not spans:
        return Layout(text, spans, pieces, [(0, len(spans))] if spans else [], False)
    if long_text == "window":
        return Layout(text, spans, pieces, _windows(pieces, budget), False)
    # truncate: keep what the tokenizer keeps; a word cut inside keeps only its seen part
    kept, used = 0, 0
    while kept < len(spans) and used + len(pieces[kept]) <= budget:
        used += len(pieces[kept])
        kept += 1
    seen_spans, seen = spans[:kept], pieces[:kept]
    rest = budget - used
    if rest > 0:  # the seen part of the word that was cut
        seen_spans.append((spans[kept][0], ends[kept][rest - 1]))
        seen.append(pieces[kept][:rest])
    return Layout(text, seen_spans, seen, [(0, len(seen_spans))], True)


def _windows(pieces: list[list[int]], budget: int) -> list[tuple[int, int]]:
    """Greedy windows of at most `budget` tokens; each next one starts about half-way through
    the previous one, so every word is in one or two windows and sees context on both sides."""
    n, out, start = len(pieces), [], 0
    while True:
        end, used = start, 0
        while end < n and used + len(pieces[end]) <= budget:
            used += len(pieces[end])
            end += 1
        end = max(end, start + 1)  # a single word longer than the limit: its pieces are cut
        out.append((start, end))
        if end >= n:
            return out
        nxt, half = start, 0
        while nxt < end and half < used / 2:
            half += len(pieces[nxt])
            nxt += 1
        start = max(nxt, start + 1)
