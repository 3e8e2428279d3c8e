"""The report's PNGs; the global bar chart is the core's, so reports match the logged charts."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import shap
from matplotlib.figure import Figure

from eaas.explain import plots
from eaas.explain.plots import NEG, POS, plt
from eaas.reports.values import numeric_matrix

OTHER = "#7f7f7f"


def slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s)


def save(fig: Figure, out_dir: Path, name: str) -> str:
    """Write the figure, close it (matplotlib keeps every open figure alive), return its name."""
    fig.savefig(out_dir / name, dpi=100, bbox_inches="tight")
    plots.close(fig)
    return name


def importance_bar(imp: pd.Series, output: str, space: str, title: str) -> Figure:
    return plots.global_bar(imp, output, space, title)


def beeswarm(
    frame: pd.DataFrame, output: int, features: list[str], title: str, space: str, output_name: str
) -> Figure:
    """shap's beeswarm for one output, from the stored arrays (tabular rows share features).

    Dots are coloured by the feature's value where it is a number (a boolean as 1/0); string
    and category values, like missing ones, have no order to colour by: shap draws them grey
    (their effect per value is in the report's category tables)."""
    values = np.array([np.asarray(v[output], dtype=float) for v in frame["values"]])
    data = numeric_matrix(frame)
    exp = shap.Explanation(values=values, data=data, feature_names=features)
    plt.figure()  # beeswarm draws on the current figure
    with warnings.catch_warnings():  # a column with no number to colour by is all NaN
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        shap.plots.beeswarm(
            exp, max_display=15, show=False, plot_size=(8, 0.4 * min(15, len(features)) + 1.8)
        )
    fig = plt.gcf()
    fig.axes[0].set_title(title, fontsize=11)
    fig.axes[0].set_xlabel(f"SHAP value ({plots.space_label(space)} of '{output_name}')")
    return fig


def prediction_hist(pred: np.ndarray, outputs: list[str], space: str) -> Figure:
    """One histogram per output (at most four), shared look."""
    k = min(len(outputs), 4)
    fig, axes = plt.subplots(1, k, figsize=(4 * k + 1, 3.2), squeeze=False)
    for o, ax in enumerate(axes[0]):
        ax.hist(pred[:, o], bins=20, color=NEG, edgecolor="white")
        ax.set_title(f"'{outputs[o]}'", fontsize=10)
        ax.set_xlabel(plots.space_label(space))
        ax.set_ylabel("rows" if o == 0 else "")
    fig.suptitle(f"prediction distribution over {len(pred)} explained rows", fontsize=11)
    fig.tight_layout()
    return fig


def token_bar(
    effects: dict[str, pd.DataFrame], output: str,
    labels: tuple[str, str] = ("pushes up", "pushes down"),
) -> Figure:
    """Top words pushing one output up (red) and down (blue): mean signed SHAP value."""
    both = pd.concat([effects["negative"][::-1], effects["positive"][::-1]])["mean"]
    both = both.sort_values()
    fig, ax = plt.subplots(figsize=(8, 0.32 * max(len(both), 2) + 1.6))
    ax.barh(range(len(both)), both.to_numpy(), color=[POS if v > 0 else NEG for v in both])
    ax.set_yticks(range(len(both)), [repr(t) for t in both.index])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"mean SHAP value per occurrence, output '{output}'")
    ax.set_title(f"words: red {labels[0]}, blue {labels[1]}", fontsize=11)
    ax.tick_params(axis="y", labelsize=9)
    fig.tight_layout()
    return fig


def compare_bar(cur: pd.Series, oth: pd.Series, labels: tuple[str, str], output: str) -> Figure:
    """Both versions' mean |SHAP| side by side, over the top features of either."""
    feats = list(dict.fromkeys([*cur.head(12).index, *oth.head(12).index]))[:15]
    feats = sorted(feats, key=lambda f: cur.get(f, 0.0))
    y = np.arange(len(feats))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(feats) + 1.8))
    ax.barh(y + 0.2, [cur.get(f, 0.0) for f in feats], 0.4, color=POS, label=labels[0])
    ax.barh(y - 0.2, [oth.get(f, 0.0) for f in feats], 0.4, color=OTHER, label=labels[1])
    ax.set_yticks(y, feats)
    ax.set_xlabel(f"mean |SHAP value| of '{output}' (same rows)", fontsize=11)
    ax.set_title(f"global importance: {labels[0]} vs {labels[1]}", fontsize=11)
    ax.legend(loc="lower right", fontsize=11)
    ax.tick_params(labelsize=11)  # shown at half width in the report: keep it legible
    fig.tight_layout()
    return fig
