"""How many model evaluations a text explanation gets."""

from __future__ import annotations

from collections.abc import Callable


def partition_evals(max_evals: int, n_words: int) -> int:
    """Evaluations for shap's Partition explainer (one fixed context) on `n_words` players.

    The word hierarchy is fully expanded at 2 evaluations per internal node (2 (n - 1)), plus
    the full and the empty text: the result is then exact for the method and does not degrade
    with length, so the budget grows with the text; `max_evals` is a floor. A larger
    `max_evals` changes nothing once the hierarchy is expanded.
    """
    return max(int(max_evals), 2 * n_words + 2)


def sampled_evals(max_evals: int, n_words: int) -> int:
    """Evaluations for the sampled text methods on `n_words` players: `max_evals`, and at
    least 4 n + 2 (two antithetic permutations: a spread to measure; a kernel regression with
    twice as many coalitions as unknowns)."""
    return max(int(max_evals), 4 * n_words + 2)


def text_cost(texts: list[str], evals: Callable[[int], int]) -> int:
    """Estimated work of explaining `texts`: words x evaluations, summed over the texts (the
    cost of one evaluation grows with the words it holds); `evals(n)` for an n-word text."""
    from eaas.explain.text.windows import word_spans

    total = 0
    for t in texts:
        n = len(word_spans(t))
        total += n * evals(n)
    return total
