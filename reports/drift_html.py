"""Files of a drift report: PNGs, drift.json, drift.csv and the self-contained drift.html."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from eaas.explain.plots import NEG, POS, plt
from eaas.reports import figures as figs
from eaas.reports.drift_stats import ALPHA
from eaas.reports.html import CSS

MAX_OUTPUTS = 4
MOVERS = 10


def side_by_side(cur: pd.Series, base: pd.Series, labels: tuple[str, str], output: str) -> Figure:
    """Both sides' mean |SHAP| per feature (top 15 of either), baseline grey, current red."""
    feats = list(dict.fromkeys([*cur.head(12).index, *base.head(12).index]))[:15]
    feats = sorted(feats, key=lambda f: cur.get(f, 0.0))
    y = np.arange(len(feats))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(feats) + 2.0))
    ax.barh(
        y + 0.2, [cur.get(f, 0.0) for f in feats], 0.4, color=POS, label=f"current: {labels[0]}"
    )
    ax.barh(y - 0.2, [base.get(f, 0.0) for f in feats], 0.4, color=figs.OTHER,
            label=f"baseline: {labels[1]}")  # fmt: skip
    ax.set_yticks(y, [str(f) for f in feats])
    ax.set_xlabel(f"mean |SHAP value| of '{output}'")
    ax.set_title(f"global importance, output '{output}': current vs baseline", fontsize=11)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig


def movers_bar(table: pd.DataFrame, output: str) -> Figure:
    """The biggest changes in mean |SHAP|; a star marks a significant one (BH q < alpha)."""
    top = table.head(MOVERS)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(top) + 1.8))
    vals = top["change"].to_numpy()
    ax.barh(range(len(top)), vals, color=[POS if v > 0 else NEG for v in vals])
    labels = [f"{f}{' *' if s else ''}" for f, s in zip(top["feature"], top["significant"],
                                                         strict=True)]  # fmt: skip
    ax.set_yticks(range(len(top)), labels)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"change in mean |SHAP| of '{output}' (current - baseline)")
    ax.set_title(f"biggest movers, output '{output}' (* significant, BH q < {ALPHA})", fontsize=11)
    fig.tight_layout()
    return fig


def write_files(
    out_dir: Path,
    title: str,
    labels: tuple[str, str],
    tables: dict[str, pd.DataFrame],
    scores: dict[str, float],
    prov: dict[str, Any],
) -> None:
    figures: list[tuple[str, str]] = []
    for name in list(tables)[:MAX_OUTPUTS]:
        t = tables[name]
        cur = pd.Series(t["current"].to_numpy(), index=t["feature"]).sort_values(ascending=False)
        base = pd.Series(t["baseline"].to_numpy(), index=t["feature"]).sort_values(ascending=False)
        fig = side_by_side(cur, base, labels, name)
        figures.append((f"mean |SHAP|, {labels[0]} vs {labels[1]}, output '{name}'",
                        figs.save(fig, out_dir, f"drift_bars_{figs.slug(name)}.png")))  # fmt: skip
        figures.append((f"biggest movers, output '{name}'",
                        figs.save(movers_bar(t, name), out_dir,
                                  f"drift_movers_{figs.slug(name)}.png")))  # fmt: skip
    long = pd.concat([t.assign(output=n) for n, t in tables.items()], ignore_index=True)
    long.to_csv(out_dir / "drift.csv", index=False)
    doc = {
        "ndcg": min(scores.values()),
        "ndcg_by_output": scores,
        "significant": sorted(set(long.loc[long["significant"], "feature"])),
        "tables": {n: t.to_dict(orient="records") for n, t in tables.items()},
        "provenance": prov,
    }
    (out_dir / "drift.json").write_text(json.dumps(doc, indent=1, default=_plain))
    html = _page(out_dir, title, labels, tables, scores, prov, figures)
    (out_dir / "drift.html").write_text(html, encoding="utf-8")


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else str(v)


def _img(out_dir: Path, caption: str, name: str) -> str:
    import base64

    data = base64.b64encode((out_dir / name).read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
        f"<figcaption>{escape(caption)} ({escape(name)})</figcaption></figure>"
    )


def _rows(t: pd.DataFrame) -> str:
    out = []
    for r in t.itertuples():
        cls = "up" if r.change > 0 else ("down" if r.change < 0 else "")
        sig = "<b>yes</b>" if r.significant else "no"
        out.append(
            f"<tr><td>{escape(str(r.feature))}</td><td class='num'>{r.baseline:.4g}</td>"
            f"<td class='num'>{r.current:.4g}</td><td class='num {cls}'>{r.change:+.4g}</td>"
            f"<td class='num'>{r.rank_baseline}</td><td class='num'>{r.rank_current}</td>"
            f"<td class='num'>{r.rank_change:+d}</td><td class='num'>{r.p_value:.3g}</td>"
            f"<td class='num'>{r.q_value:.3g}</td><td>{sig}</td></tr>"
        )
    return "".join(out)


def _page(out_dir, title, labels, tables, scores, prov, figures) -> str:
    worst = min(scores.values())
    head = ("<tr><th>feature</th><th>mean |SHAP| baseline</th><th>current</th><th>change</th>"
            "<th>rank baseline</th><th>rank current</th><th>rank change</th><th>p (Mann-Whitney U)"
            "</th><th>q (BH)</th><th>significant</th></tr>")  # fmt: skip
    sections = "".join(
        f"<h3>output '{escape(n)}' · NDCG {scores[n]:.4f}</h3><table>{head}{_rows(t)}</table>"
        for n, t in tables.items()
    )
    n_sig = int(sum(t["significant"].sum() for t in tables.values()))
    prov_rows = "".join(
        f"<tr><th>{escape(k)}</th><td><code>{escape(json.dumps(v, default=str))}</code></td></tr>"
        for k, v in prov.items()
    )
    body = (
        f"<h1>{escape(title)}</h1><p class='sub'>baseline: {escape(labels[1])} · current: "
        f"{escape(labels[0])}</p><section><h2>Summary</h2><table class='kv'>"
        f"<tr><th>NDCG (worst output)</th><td class='num'>{worst:.4f}</td></tr>"
        f"<tr><th>significant changes</th><td class='num'>{n_sig} (BH q &lt; {ALPHA})</td></tr>"
        "</table><p class='sub'>NDCG compares the current importance ranking with the "
        "baseline's, weighting each feature by its baseline importance (SageMaker Clarify's "
        "attribution drift measure); 1 means the ranking is unchanged.</p></section>"
        f"<section><h2>Charts</h2><div class='row'>"
        f"{''.join(_img(out_dir, c, n) for c, n in figures)}</div></section>"
        f"<section><h2>Per feature, biggest movers first</h2>{sections}</section>"
        f"<section><h2>Provenance</h2><table class='kv'>{prov_rows}</table></section>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>{body}"
        "</main></body></html>"
    )
