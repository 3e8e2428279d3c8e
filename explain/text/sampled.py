"""Shapley values of the word-masking game, sampled: `text-permutation` (the default for text)
and `text-kernel`.

The game is the one every text method here plays: the model's output on the text with the
words outside a coalition masked (a transformers model: one mask token per run of masked
words; a model of strings: the words cut out). Both estimators converge to its Shapley values
as the budget grows and report their standard errors (`explain/shapley.py`); with a tolerance
they stop adding evaluations once the errors are small enough (`docs/text.md`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from eaas.explain.errors import Stop
from eaas.explain.method import Capabilities
from eaas.explain.shapley import Budget, Estimate, Game, kernel, permutation, row_rng
from eaas.explain.text.base import Attribution, TextMethod
from eaas.explain.text.budget import sampled_evals, text_cost
from eaas.explain.text.windows import Layout
from eaas.explain.validation import Params

Estimator = Callable[[Game, int, np.ndarray, Budget, np.random.Generator], Estimate]


class TextSampledMethod(TextMethod):
    capabilities = Capabilities(inputs="text", exact=False, reentrant=True)

    @staticmethod
    @abstractmethod
    def estimator() -> Estimator:
        """The Shapley estimator over the game (explain/shapley.py)."""

    def cost(self, data: Any, params: Params) -> int:
        return text_cost(data, lambda n: sampled_evals(params.max_evals, n))

    def _attribute(self, lay: Layout, pred: np.ndarray, params: Params,
                   stop: Stop | None) -> Attribution:
        binary = self.fn.complementary  # p0 = 1 - p1: explain p1 once, class 0 is its negation
        n = len(lay.spans)

        def game(keeps: np.ndarray) -> np.ndarray:
            p = self.fn.masked(lay, keeps, stop)
            return p[:, 1:2] if binary else p

        base = game(np.zeros((1, n), dtype=bool))[0]
        budget = Budget(sampled_evals(params.max_evals, n), params.tolerance)
        est = self.estimator()(game, n, base, budget, row_rng(params.seed))
        if binary:
            return Attribution(np.array([1.0 - base[0], base[0]]),
                               np.vstack([-est.values, est.values]),
                               np.vstack([est.errors, est.errors]), est.met)
        return Attribution(base, est.values, est.errors, est.met)


class TextKernelMethod(TextSampledMethod):
    """Kernel SHAP over words, paired and stratified by coalition size: the most accurate on
    short texts (whole sizes enumerated), noisier than permutations when the budget is only a
    few evaluations per word (docs/text.md)."""

    name = "text-kernel"

    @staticmethod
    def estimator() -> Estimator:
        return kernel


class TextPermutationMethod(TextSampledMethod):
    """Antithetic permutation sampling over words: the default (unbiased at any budget)."""

    name = "text-permutation"

    @staticmethod
    def estimator() -> Estimator:
        return permutation
