"""Numbers of a report: global importance, signed token effects, rank moves between versions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explain.plots import global_importance

__all__ = ["global_importance", "importance_table", "token_effects", "rank_moves", "predictions"]


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


def token_effects(frame: pd.DataFrame, output: int, top: int = 10) -> dict[str, pd.DataFrame]:
    """Mean signed value per token (per occurrence) for one output: who pushes up, who down.

    Tokens seen once are noisy; they are left out when enough tokens occur at least twice.
    """
    acc: dict[str, list[float]] = {}
    for feats, vals in zip(frame["features"], frame["values"], strict=True):
        for f, v in zip(feats, vals[output], strict=True):
            acc.setdefault(str(f), []).append(float(v))
    table = pd.DataFrame(
        {
            "mean": {t: float(np.mean(v)) for t, v in acc.items()},
            "count": {t: len(v) for t, v in acc.items()},
        }
    )
    if (table["count"] >= 2).sum() >= 2 * top:
        table = table[table["count"] >= 2]
    up = table[table["mean"] > 0].sort_values("mean", ascending=False).head(top)
    down = table[table["mean"] < 0].sort_values("mean").head(top)
    return {"positive": up, "negative": down}


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
