"""How many model evaluations a text explanation gets."""

from __future__ import annotations


def partition_evals(max_evals: int, n_words: int) -> int:
    """Evaluations for shap's Partition explainer on `n_words` players."""
    return max(int(max_evals), 2)
