"""Any model whose input is one string column, explained over words through its own predict.

A scikit-learn text pipeline, a custom pyfunc, a pyfunc around a transformers pipeline: eaas
cannot see their tokens, so the players are the words of the text and a masked word is removed
from it (the characters between kept words stay as they were, so the full text is exactly the
model's input and `prediction` is its own output). There is no token limit unless the model
declares one, so nothing is truncated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from eaas.explain.errors import Stop, Stopped, UnsupportedModel
from eaas.explain.source import SourceModel
from eaas.explain.text.windows import UNBOUNDED, Layout

BATCH = 256  # masked texts per predict call


class StringForward:
    """The model's outputs on masked texts: the same surface as `TextForward` for the `text`
    method (masked, n_classes, complementary, output_space), over strings instead of ids."""

    tokenizer = None  # words only: no pieces, no limit
    budget = UNBOUNDED
    batch_size = BATCH

    def __init__(self, source: SourceModel) -> None:
        self.source = source
        self.column = source.feature_names[0]
        # fitted on a frame (a ColumnTransformer selects its column by name) or on raw strings
        self.as_frame = source.flavor == "pyfunc" or hasattr(source.model, "feature_names_in_")
        try:
            probe = self.predict(["", "a"])
        except Exception as exc:  # refused at build, one line: never explained with a guess
            raise UnsupportedModel(
                f"model: its predict does not take a column of strings '{self.column}' "
                f"({type(exc).__name__})"
            ) from None
        self.n_classes = int(probe.shape[1])
        self.calls = 0

    @property
    def output_space(self) -> str:
        return "probability" if self.source.is_classifier else "raw"

    @property
    def complementary(self) -> bool:
        """A classifier's two probabilities sum to one: class 0 is class 1 negated."""
        return self.source.is_classifier and self.n_classes == 2

    def predict(self, texts: list[str]) -> np.ndarray:
        data: Any = pd.DataFrame({self.column: texts}) if self.as_frame else list(texts)
        if self.source.flavor != "pyfunc" and self.source.is_classifier:
            out = self.source.model.predict_proba(data)
        elif self.source.flavor == "pyfunc":
            out = self.source.model.predict(data)
            out = out.to_numpy() if hasattr(out, "to_numpy") else out
        else:
            out = self.source.model.predict(data)
        return np.asarray(out, dtype=float).reshape(len(texts), -1)

    def masked(self, layout: Layout, keeps: np.ndarray, stop: Stop | None = None) -> np.ndarray:
        """The model's outputs for each row of `keeps` (bool, rows x words), the words not kept
        removed from the text."""
        keeps = np.asarray(keeps, dtype=bool)
        keeps = keeps.reshape(keeps.shape[0] if keeps.ndim > 1 else 1, len(layout.spans))
        texts = [masked_text(layout, k) for k in keeps]
        parts = []
        for s in range(0, len(texts), self.batch_size):
            if stop is not None and stop():
                raise Stopped("explanation stopped: its time budget ran out")
            self.calls += 1
            parts.append(self.predict(texts[s : s + self.batch_size]))
        return np.vstack(parts) if parts else np.zeros((0, self.n_classes))


def masked_text(layout: Layout, keep: np.ndarray) -> str:
    """The text with the words not kept cut out (what lies between words is kept)."""
    if keep.all():
        return layout.text
    out, pos = [], 0
    for (a, b), k in zip(layout.spans, keep, strict=True):
        out.append(layout.text[pos:a])
        if k:
            out.append(layout.text[a:b])
        pos = b
    out.append(layout.text[pos:])
    return "".join(out)
