"""The model's forward pass over word-masked texts, built from token ids.

Each word is tokenized once per text (`explain/text_windows.py`); a masked text is the ids of its
kept words with one mask token per masked word, exactly what the tokenizer makes of the masked
string (a test checks the ids are identical). The work is cut into forward batches, and `stop()`
is polled before each one, so a caller's time budget ends the work within one forward batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from eaas.explain.errors import Stop, Stopped
from eaas.explain.source import transformers_head
from eaas.explain.text.windows import Layout, model_limit

Spread = Callable[[list[list[list[int]]], Stop | None], list[np.ndarray]]


def check_text_model(source: Any, method: str) -> None:
    from eaas.explain.errors import UnsupportedModel

    if source.flavor != "transformers":  # the forward pass needs its tokenizer and torch model
        raise UnsupportedModel(
            f"method '{method}' needs a transformers text classifier; "
            f"the model is a {source.flavor} {source.type_name}"
        )


def resolve_device(setting: str) -> torch.device:
    """`auto`: CUDA when available; `cuda` without one is an error, not a silent CPU run."""
    from eaas.explain.errors import BadRequest

    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise BadRequest(
            "EAAS_DEVICE: 'cuda' was asked but no CUDA device is available "
            "(use auto or cpu)",
            field="EAAS_DEVICE",
        )
    return torch.device("cuda")


def _special_ends(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text's own tokens."""
    own = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("a")["input_ids"])
    for i in range(len(full) - len(own) + 1):
        if full[i : i + len(own)] == own:
            return full[:i], full[i + len(own) :]
    return [], []


class TextForward:
    """The outputs of a transformers sequence classifier on token-id sequences, through the
    head the model defines: softmax (single-label), a sigmoid per label (multi-label) or the
    raw values (regression)."""

    def __init__(self, model: Any, tokenizer: Any, device: torch.device,
                 batch_size: int = 64) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.limit = model_limit(model, tokenizer)
        self.prefix, self.suffix = _special_ends(tokenizer)
        self.budget = self.limit - len(self.prefix) - len(self.suffix)  # positions for words
        self.mask_id = tokenizer.mask_token_id
        if self.mask_id is None:  # no mask token: "..." as shap does
            self.mask_id = tokenizer("...", add_special_tokens=False)["input_ids"][0]
        self.pad_id = tokenizer.pad_token_id or 0
        self.calls = 0  # forward batches run (tests count them)
        self.collapse = False  # one mask token per run of masked words instead of per word
        self.head = transformers_head(model.config)
        # runs a call's forward batches elsewhere (`eaas serve --ray`: other replicas' nodes);
        # None: here, one after the other
        self.spread: Spread | None = None

    @property
    def output_space(self) -> str:
        return "raw" if self.head == "identity" else "probability"

    @property
    def complementary(self) -> bool:
        """Two softmax outputs: p0 = 1 - p1, so class 0 is explained as class 1 negated. Only
        then: two sigmoid labels or two regression outputs are independent."""
        return self.head == "softmax" and self.n_classes == 2

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        if self.head == "softmax":
            return torch.softmax(logits, dim=-1)
        if self.head == "sigmoid":
            return torch.sigmoid(logits)
        return logits

    def sequence(
        self, layout: Layout, window: tuple[int, int], keep: Sequence[bool] | np.ndarray
    ) -> list[int]:
        """Ids of one window, each word not kept replaced by a mask token (one per run of
        masked words when `collapse`)."""
        ids = list(self.prefix)
        run = False  # inside a run of masked words
        for j in range(window[0], window[1]):
            if keep[j]:
                ids += layout.pieces[j]
                run = False
            elif not (run and self.collapse):
                ids.append(self.mask_id)
                run = True
        return ids[: len(self.prefix) + self.budget] + self.suffix

    @torch.inference_mode()
    def probs(self, seqs: list[list[int]], stop: Stop | None = None) -> np.ndarray:
        """(len(seqs), outputs) model outputs (probabilities, or raw values for a regression
        head), in forward batches of similar lengths."""
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        groups = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        batches = [[seqs[i] for i in idx] for idx in groups]
        if self.spread is not None and len(batches) > 1:
            # the same forward batches, run elsewhere: the numbers do not change
            results = self.spread(batches, stop)
        else:
            results = []
            for batch in batches:
                if stop is not None and stop():
                    raise Stopped("explanation stopped: its time budget ran out")
                results.append(self.run_batch(batch))
        out: list[np.ndarray] = [np.empty(0)] * len(seqs)
        for idx, p in zip(groups, results, strict=True):
            for r, i in enumerate(idx):
                out[i] = p[r]
        return np.stack(out) if seqs else np.zeros((0, self.n_classes))

    @torch.inference_mode()
    def run_batch(self, batch: list[list[int]]) -> np.ndarray:
        """One forward batch (token-id sequences, padded to the longest): (len, outputs)."""
        width = max(len(q) for q in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        for r, q in enumerate(batch):
            ids[r, : len(q)] = torch.tensor(q)
            att[r, : len(q)] = 1
        self.calls += 1
        logits = self.model(
            input_ids=ids.to(self.device), attention_mask=att.to(self.device)
        ).logits
        return self.activate(logits.float()).cpu().numpy().astype(float)

    @property
    def n_classes(self) -> int:
        return int(self.model.config.num_labels)

    def masked(self, layout: Layout, keeps: np.ndarray, stop: Stop | None = None) -> np.ndarray:
        """The explained output for each row of `keeps` (bool, rows x words): the mean of the
        windows' probabilities (one window unless long_text=window)."""
        keeps = np.asarray(keeps, dtype=bool)
        keeps = keeps.reshape(keeps.shape[0] if keeps.ndim > 1 else 1, len(layout.spans))
        wins = layout.windows or [(0, 0)]
        seqs = [self.sequence(layout, w, k) for k in keeps for w in wins]
        p = self.probs(seqs, stop)
        return p.reshape(len(keeps), len(wins), -1).mean(axis=1)
