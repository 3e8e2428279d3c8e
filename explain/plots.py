"""Bar charts of explanations: global mean |SHAP| and one instance's signed attributions."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: servers and Spark workers have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from eaas.explain.schema import from_typed  # noqa: E402

POS, NEG = "#d62728", "#1f77b4"  # shap's convention: red raises the output, blue lowers it
MAX_LABEL = 25  # characters of a string value in a bar's label


def space_label(space: str) -> str:
    return {"probability": "probability", "log_odds": "log-odds", "raw": "raw output"}.get(
        space, space
    )


def global_importance(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Mean |value| per feature (or token), per output, over the explained rows."""
    out: dict[str, pd.Series] = {}
    names = list(frame["output_names"].iloc[0])
    for o, name in enumerate(names):
        acc: dict[str, list[float]] = {}
        for feats, vals in zip(frame["features"], frame["values"], strict=True):
            for f, v in zip(feats, vals[o], strict=True):
                acc.setdefault(str(f), []).append(abs(float(v)))
        n = len(frame)  # tokens absent from a row count as 0 there
        out[name] = pd.Series({f: sum(v) / n for f, v in acc.items()}).sort_values(ascending=False)
    return out


def global_bar(imp: pd.Series, output: str, space: str, title: str, top: int = 15) -> Figure:
    top_imp = imp.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top_imp) + 1.6))
    ax.barh(top_imp.index, top_imp.to_numpy(), color=POS)
    ax.set_xlabel(f"mean |SHAP value| ({space_label(space)} of '{output}')")
    ax.set_title(f"{title}\nglobal importance for output '{output}'", fontsize=11)
    ax.tick_params(axis="y", labelsize=9)
    fig.tight_layout()
    return fig


def instance_bar(row: pd.Series, output: int = -1, title: str = "", top: int = 12) -> Figure:
    """Signed attributions of one explained instance for one output (default: the last)."""
    outputs = list(row["output_names"])
    o = output % len(outputs)
    values = np.asarray(row["values"][o], dtype=float)
    labels = _labels(row)
    order = list(np.argsort(-np.abs(values))[:top][::-1])
    bars = [values[i] for i in order]
    names = [labels[i] for i in order]
    if len(values) > top:  # the rest as one bar, so the bars still add up to the prediction
        rest = np.delete(values, order)
        bars.insert(0, float(rest.sum()))
        names.insert(0, f"{len(rest)} other features")
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(bars) + 1.9))
    # positions, not labels, on the axis: a repeated token must stay its own bar
    ax.barh(range(len(bars)), bars, color=[POS if v > 0 else NEG for v in bars])
    ax.set_yticks(range(len(bars)), names)
    ax.axvline(0, color="black", linewidth=0.8)
    base, pred = row["base_values"][o], row["prediction"][o]
    ax.set_xlabel(f"SHAP value: contribution to '{outputs[o]}'\n{approximation_note(row, o)}",
                  fontsize=9)
    ax.set_title(
        f"{title}\n'{outputs[o]}': base {base:.3f} + sum of contributions = prediction {pred:.3f}",
        fontsize=10,
    )
    ax.tick_params(axis="y", labelsize=9)
    fig.tight_layout()
    return fig


def approximation_note(row: Any, o: int) -> str:
    """How far output `o`'s attributions may be from the Shapley values, in one line: the
    norm of their standard errors, absolute and relative to |prediction - base value|."""
    if "approximation_error" not in row:  # stored before the field existed
        return "approximation error: not recorded"
    err = row["approximation_error"]
    if err is None:
        return "approximation error: not estimated by this method"
    norm = float(np.sqrt(np.square(np.asarray(err[o], dtype=float)).sum()))
    if norm == 0:
        return "exact: approximation error 0"
    gap = abs(float(row["prediction"][o]) - float(row["base_values"][o]))
    rel = f" ({norm / gap:.1%} of |prediction - base|)" if gap > 0 else ""
    met = "met" if row.get("tolerance_met") else "not met"
    return f"sampled: standard error {norm:.2g}{rel}, tolerance {met}"


def _labels(row: pd.Series) -> list[str]:
    feats, data = list(row["features"]), from_typed(row["data"])
    if feats == data:  # text: the token is its own value
        return [f"{f!r}" if len(f) < 30 else f"{f[:27]!r}..." for f in feats]
    return [f"{f} = {format_value(d, MAX_LABEL)}" for f, d in zip(feats, data, strict=True)]


def format_value(v: Any, width: int | None = None) -> str:
    """One input value as a reader sees it: `missing` for None/NaN, numbers compact (52000,
    0.1235, 1.5e+15), strings as they are (cut to `width` characters with an ellipsis)."""
    if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return "missing"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        x = float(v)
        text = f"{x:.4g}"
        if "e+" in text and abs(x) < 1e12:  # a big number: its digits, not an exponent
            text = f"{x:.0f}"
        return text
    text = str(v)
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def close(fig: Figure) -> None:
    plt.close(fig)
