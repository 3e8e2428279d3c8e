"""What every word-level text method shares: the model's forward over masked texts, the
layout of each text (what the model sees of it) and the loop over texts.

A text longer than the model's limit is either cut where the model cuts it
(`long_text=truncate`, the row says `truncated`) or explained over overlapping windows
(`long_text=window`): the explained output is then the mean of the windows' outputs.
docs/text.md explains the choice.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eaas.explain.errors import Stop
from eaas.explain.method import Method
from eaas.explain.schema import Explanations
from eaas.explain.source import SourceModel
from eaas.explain.text.forward import TextForward, check_text_model, resolve_device
from eaas.explain.text.strings import StringForward
from eaas.explain.text.windows import Layout, make_layout
from eaas.explain.validation import Params


@dataclass
class Attribution:
    """One text's attributions: base (outputs,), values and errors (outputs, words)."""

    base: np.ndarray
    values: np.ndarray
    errors: np.ndarray  # standard errors; NaN where the method estimates none
    met: bool


class TextMethod(Method):
    """Words of a text as players, through the model's own forward (a transformers classifier
    on token ids, or any model of one string column through its predict)."""

    def __init__(self, source: SourceModel, background: object = None) -> None:
        super().__init__(source, None)
        self.fn: TextForward | StringForward
        if source.flavor != "transformers":  # any model of one string column: its predict
            self.fn = StringForward(source)
            return
        check_text_model(source, self.name)
        device = resolve_device(source.settings.device)
        self.fn = TextForward(source.model, source.components["tokenizer"], device)
        self.fn.collapse = True

    @property
    def output_space(self) -> str:
        return self.fn.output_space

    def spread_to(self, spread: Callable[..., list[Any]]) -> bool:
        """A transformers model's forward batches are independent: they can run elsewhere."""
        if not isinstance(self.fn, TextForward):
            return False
        self.fn.spread = spread
        return True

    def run_batch(self, batch: Any) -> Any:
        if not isinstance(self.fn, TextForward):
            return super().run_batch(batch)
        return self.fn.run_batch(batch)

    def explain(self, texts: list[str], params: Params, stop: Stop | None = None) -> Explanations:
        k = self.fn.n_classes
        rows: list[Attribution] = []
        preds, tokens, cut = [], [], []
        for text in texts:
            lay = make_layout(text, self.fn.tokenizer, self.fn.budget, params.long_text)
            n = len(lay.spans)
            pred = self.fn.masked(lay, np.ones((1, n), dtype=bool), stop)[0]
            if n < 2:  # zero or one word: exact without sampling
                base = self.fn.masked(lay, np.zeros((1, n), dtype=bool), stop)[0] if n else pred
                vals = (pred - base)[:, None][:, :n]
                rows.append(Attribution(base, vals, np.zeros_like(vals), True))
            else:
                rows.append(self._attribute(lay, pred, params, stop))
            preds.append(pred)
            tokens.append(lay.words)
            cut.append(lay.truncated)
        return Explanations(
            self.source.output_names, np.array(preds).reshape(-1, k),
            np.array([r.base for r in rows]).reshape(-1, k), [r.values for r in rows], tokens,
            tokens, cut, errors=[r.errors for r in rows], met=[r.met for r in rows],
        )

    @abstractmethod
    def _attribute(self, lay: Layout, pred: np.ndarray, params: Params,
                   stop: Stop | None) -> Attribution:
        """Attributions of one text of two words or more; `pred` is the model's output on it."""
