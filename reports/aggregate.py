"""Numbers of a report: global importance, signed token effects, rank moves between versions."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from eaas.explain.plots import global_importance

__all__ = [
    "WordOptions", "global_importance", "importance_table", "token_effects", "word_importance",
    "rank_moves", "predictions", "shown_outputs", "mirrored",
]
_HAS_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class WordOptions:
    """How a text report ranks words: case-folded; a word needs `min_count` occurrences to be
    ranked; stop-words and punctuation stay in the data but are not ranked unless asked."""

    min_count: int = 3
    include_stopwords: bool = False
    all_outputs: bool = False  # a 2-class model shows one output (the other is its mirror)


def is_stopword(word: str) -> bool:
    return word in ENGLISH_STOP_WORDS or not _HAS_WORD.search(word)


def shown_outputs(names: list[str], by_word: bool, opts: WordOptions,
                  mirrored: bool = True) -> list[str]:
    """The outputs a report shows: for a 2-output word-level (text) model whose first output's
    values are the exact negation of the second's (a 2-class softmax), the second only, unless
    all outputs are asked for. Two independent outputs (two sigmoid labels, two regression
    outputs) are both shown."""
    if by_word and mirrored and len(names) == 2 and not opts.all_outputs:
        return names[1:]
    return list(names)


def mirrored(frame: pd.DataFrame) -> bool:
    """Every row's output 0 is exactly output 1 negated (how a 2-class softmax is computed)."""
    for v in frame["values"]:
        rows = [np.asarray(r, dtype=float) for r in v]
        if len(rows) != 2 or not np.array_equal(rows[0], -rows[1]):
            return False
    return True


def word_table(frame: pd.DataFrame, output: int, opts: WordOptions) -> pd.DataFrame:
    """Per case-folded word: mean signed value, mean |value| (per occurrence) and count; only
    the words that may be ranked."""
    acc: dict[str, list[float]] = {}
    for feats, vals in zip(frame["features"], frame["values"], strict=True):
        for f, v in zip(feats, vals[output], strict=True):
            acc.setdefault(str(f).casefold(), []).append(float(v))
    table = pd.DataFrame(
        {
            "mean": {t: float(np.mean(v)) for t, v in acc.items()},
            "mean_abs": {t: float(np.mean(np.abs(v))) for t, v in acc.items()},
            "count": {t: len(v) for t, v in acc.items()},
        },
        columns=["mean", "mean_abs", "count"],
    )
    keep = table["count"] >= opts.min_count
    if not opts.include_stopwords:
        keep &= ~table.index.to_series().map(is_stopword).astype(bool)
    return table[keep]


def word_importance(
    frame: pd.DataFrame, names: list[str], opts: WordOptions
) -> dict[str, pd.Series]:
    """Mean |value| per occurrence of each ranked word, per output, largest first."""
    return {
        name: word_table(frame, o, opts)["mean_abs"].sort_values(ascending=False)
        for o, name in enumerate(names)
    }


def importance_table(imp: dict[str, pd.Series]) -> pd.DataFrame:
    """Long form for the CSV: one row per (output, feature), ranked within the output."""
    rows = [
        {"output": o, "feature": f, "mean_abs_shap": float(v), "rank": r + 1}
        for o, s in imp.items()
        for r, (f, v) in enumerate(s.items())
    ]
    return pd.DataFrame(rows, columns=["output", "feature", "mean_abs_shap", "rank"])


def importance_json(imp: dict[str, pd.Series]) -> dict[str, dict[str, float]]:
    return {o: {str(f): float(v) for f, v in s.items()} for o, s in imp.items()}


def token_effects(
    frame: pd.DataFrame, output: int, top: int = 10, opts: WordOptions | None = None
) -> dict[str, pd.DataFrame]:
    """Mean signed value per word (per occurrence) for one output: who pushes up, who down.

    Words are case-folded, need `opts.min_count` occurrences, and stop-words and punctuation
    are not ranked unless `opts.include_stopwords`.
    """
    table = word_table(frame, output, opts or WordOptions())[["mean", "count"]]
    up = table[table["mean"] > 0].sort_values("mean", ascending=False).head(top)
    down = table[table["mean"] < 0].sort_values("mean").head(top)
    return {"positive": up, "negative": down}


def push_labels(names: list[str], output: str) -> tuple[str, str]:
    """Table titles for the two signs of one output's values."""
    if len(names) == 2:
        other = names[0] if output == names[1] else names[1]
        return f"pushes toward {output}", f"pushes toward {other}"
    return f"pushes toward {output}", f"pushes away from {output}"


def rank_moves(current: pd.Series, other: pd.Series, top: int = 8) -> pd.DataFrame:
    """Features in either ranking with both ranks; the biggest moves first.

    A feature missing from one side (a token never seen, a dropped input) ranks last there.
    """
    feats = list(dict.fromkeys([*current.index, *other.index]))
    r_cur = {f: i + 1 for i, f in enumerate(current.index)}
    r_oth = {f: i + 1 for i, f in enumerate(other.index)}
    last = len(feats)
    rows = [
        {
            "feature": f,
            "current": float(current.get(f, 0.0)),
            "other": float(other.get(f, 0.0)),
            "rank_current": r_cur.get(f, last),
            "rank_other": r_oth.get(f, last),
        }
        for f in feats
    ]
    table = pd.DataFrame(rows)
    table["moved"] = table["rank_other"] - table["rank_current"]  # > 0: more important now
    order = table["moved"].abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order].head(top).reset_index(drop=True)


def predictions(frame: pd.DataFrame) -> np.ndarray:
    """(rows, outputs) model outputs of the explained rows."""
    return np.array([np.asarray(p, dtype=float) for p in frame["prediction"]])
