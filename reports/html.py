"""The self-contained report.html: inline CSS, PNGs as data URIs, no script, no network."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eaas.explain.plots import NEG, POS, space_label
from eaas.reports.categories import MISSING, mean_column

TOP = 15
MAX_VALUES = 20  # category values listed per input; more: the ends (categories.json has all)
GREY = (
    " String and category inputs are grey: their values have no order to colour by (see"
    " <a href='#categories'>the category tables</a>)."
)
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;
margin-top:36px} h3{margin:18px 0 6px}
.sub{color:#555;margin:0 0 16px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px 20px 16px;
margin:16px 0}
.row{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start}
figure{margin:8px 0;flex:1 1 45%;max-width:640px}
figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.9em;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0} td.num{text-align:right;font-variant-numeric:tabular-nums}
.kv th{width:200px} .up{color:#b22} .down{color:#15a}
.ex{line-height:2.1;padding:6px 0;border-bottom:1px dashed #ddd}
.ex span.t{padding:2px 3px;border-radius:3px;margin:0 1px}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:6px 10px}
code{font-size:.9em;word-break:break-all}
"""


@dataclass
class Content:
    """Everything the page shows; built by reports.build."""

    title: str
    player: str  # "feature" | "word": what one attribution is for (the input rule's)
    out_dir: Path
    provenance: dict[str, Any]
    importances: dict[str, pd.Series]
    figures: dict[str, list[tuple[str, str]]]  # section -> [(caption, png name)]
    tokens: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    compare: dict[str, Any] | None = None
    push_labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    # string/category inputs: per value, rows and mean SHAP (reports/categories.py), sorted by
    # `category_output`
    categories: dict[str, pd.DataFrame] = field(default_factory=dict)
    category_output: str = ""


def _img(c: Content, caption: str, name: str) -> str:
    data = base64.b64encode((c.out_dir / name).read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
        f"<figcaption>{escape(caption)} ({escape(name)})</figcaption></figure>"
    )


def _figs(c: Content, section: str) -> str:
    return '<div class="row">' + "".join(_img(c, *f) for f in c.figures.get(section, [])) + "</div>"


def _table(df: pd.DataFrame, cols: dict[str, str], num: set[str] = frozenset()) -> str:
    head = "".join(f"<th>{escape(v)}</th>" for v in cols.values())
    body = ""
    for _, r in df.iterrows():
        cells = ""
        for k in cols:
            v = r[k]
            text = f"{v:.4g}" if isinstance(v, float) else str(v)
            cells += (
                f'<td class="num">{escape(text)}</td>' if k in num else f"<td>{escape(text)}</td>"
            )
        body += f"<tr>{cells}</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def _kv(d: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td><code>{escape(_fmt(v))}</code></td></tr>"
        for k, v in d.items()
    )
    return f'<table class="kv">{rows}</table>'


def _fmt(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True) if v else "—"
    return str(v)


def _importance(c: Content) -> str:
    unit = c.player
    space = escape(space_label(c.provenance["explainer"]["output_space"]))
    parts = [
        "<section><h2>Global importance</h2>",
        f"<p>Mean |SHAP value| per {unit} over the {c.provenance['input']['explained_rows']} "
        f"explained rows, per output ({space} space). Full lists: "
        "<code>global_importance.json</code>, <code>global_importance.csv</code>.</p>",
    ]
    parts.append('<div class="row">')  # one table per output, side by side
    for o, s in c.importances.items():
        top = pd.DataFrame({"rank": range(1, len(s) + 1), unit: s.index, "mean |SHAP|": s.values})
        parts.append(f"<div><h3>output '{escape(o)}'</h3>")
        cols = {k: k for k in top.columns}
        parts.append(_table(top.head(TOP), cols, {"mean |SHAP|", "rank"}) + "</div>")
    parts.append("</div>" + _figs(c, "importance"))
    if c.player == "feature":
        grey = GREY if c.categories else ""
        parts += [
            "<h3>Summary (beeswarm)</h3>",
            "<p>One dot per row: position is the SHAP "
            f"value, colour the feature's value (red high, blue low).{grey}</p>",
            _figs(c, "beeswarm"),
        ]
    return "".join(parts) + "</section>"


def _categories(c: Content) -> str:
    """A table per string/category input: which values push the main output up or down."""
    if not c.categories:
        return ""
    main = c.category_output
    up, down = c.push_labels.get(main, ("pushes up", "pushes down"))
    space = escape(space_label(c.provenance["explainer"]["output_space"]))
    parts = [
        "<section id='categories'><h2>Categories</h2>",
        f"<p>Per value of each string or category input: the explained rows holding it and "
        f"the input's mean SHAP value for output '{escape(main)}' ({space}), largest first. "
        f"<span class='up'>Positive: {escape(up)}</span>; <span class='down'>negative: "
        f"{escape(down)}</span>. A missing value is its own row, {MISSING}. Every value and "
        "output: <code>categories.json</code>.</p>",
    ]
    for col, table in c.categories.items():
        shown, note = _ends(table)
        parts.append(f"<h3>'{escape(col)}'</h3>{note}")
        cols = {"value": "value", "rows": "rows"}
        cols.update({n: n for n in _mean_columns(table, mean_column(main))})
        shown = shown.assign(value=[MISSING if v is None else v for v in shown["value"]])
        parts.append(_table(shown, cols, set(cols) - {"value"}))
    return "".join(parts) + "</section>"


def _mean_columns(table: pd.DataFrame, main: str) -> list[str]:
    """The main output's mean first; the others unless one mirrors it (two classes)."""
    others = [n for n in table.columns[2:] if n != main]
    if len(others) == 1 and np.allclose(table[others[0]], -table[main], atol=1e-9):
        return [main]
    return [main, *others][:4]  # a page width; categories.json has every output


def _ends(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """All values, or the MAX_VALUES // 2 at each end (pushing most either way) and a note."""
    if len(table) <= MAX_VALUES:
        return table, ""
    half = MAX_VALUES // 2
    note = (f"<p>{len(table)} values; shown: the {half} with the largest and the {half} with "
            "the smallest mean.</p>")  # fmt: skip
    return pd.concat([table.head(half), table.tail(half)]), note


def _tokens(c: Content) -> str:
    if not c.tokens:
        return ""
    parts = [
        "<section><h2>Words that push each class</h2>",
        "<p>Mean signed SHAP value per occurrence of a word (case-folded); count = "
        "occurrences. Only words seen often enough are ranked; stop-words and punctuation "
        "stay in the data but are not ranked unless asked (<code>--include-stopwords</code>)."
        "</p>",
    ]
    for o, eff in c.tokens.items():
        up, down = c.push_labels.get(o, ("pushes up", "pushes down"))
        parts.append(f"<h3>output '{escape(o)}'</h3><div class='row'>")
        for side, label in (("positive", up), ("negative", down)):
            df = eff[side].reset_index(names="word")
            cls = "up" if side == "positive" else "down"
            parts.append(f"<div><b class='{cls}'>{escape(label)}</b>")
            parts.append(
                _table(
                    df, {"word": "word", "mean": "mean SHAP", "count": "count"}, {"mean", "count"}
                )
                + "</div>"
            )
        parts.append("</div>")
    parts.append(_figs(c, "tokens"))
    parts.append(_examples(c))
    return "".join(parts) + "</section>"


def _examples(c: Content) -> str:
    if not c.examples:
        return ""
    out = [
        "<h3>Examples</h3><p>Red words push the named output up, blue push it down; "
        "the stronger the colour, the larger the value.</p>"
    ]
    for ex in c.examples:
        vmax = max((abs(v) for v in ex["values"]), default=0.0) or 1.0
        spans = []
        for tok, v in zip(ex["tokens"], ex["values"], strict=True):
            rgb = POS if v > 0 else NEG
            alpha = int(min(abs(v) / vmax, 1.0) * 200)
            ink = "#fff" if alpha > 120 else "#222"  # dark background: light text stays legible
            spans.append(
                f'<span class="t" title="{v:+.4f}" style="background:{rgb}{alpha:02x};color:{ink}">'
                f"{escape(str(tok))}</span>"
            )
        out.append(
            f"<div class='ex'><b>{escape(ex['output'])} = {ex['prediction']:.3f}</b>: "
            + " ".join(spans)
            + "</div>"
        )
    return "".join(out)


def _compare(c: Content) -> str:
    cmp = c.compare
    if not cmp:
        return ""
    parts = [
        "<section><h2>Comparison with " + escape(cmp["label"]) + "</h2>",
        f"<p>Both explainers on the same {cmp['rows']} rows; explainer "
        f"<code>{escape(cmp['explainer'])}</code>. Rank 1 = most important; "
        "moved &gt; 0: more important in the version under review.</p>",
    ]
    cols = {
        "feature": "feature",
        "current": cmp["review_label"],
        "other": cmp["label"],
        "rank_current": "rank (review)",
        "rank_other": "rank (other)",
        "moved": "moved",
    }
    for o, moves in cmp["moves"].items():
        parts.append(f"<h3>output '{escape(o)}': features whose rank moved most</h3>")
        parts.append(
            _table(moves, cols, {"current", "other", "rank_current", "rank_other", "moved"})
        )
    parts.append(_figs(c, "compare"))
    return "".join(parts) + "</section>"


def _provenance(c: Content) -> str:
    p = c.provenance
    exp = {k: v for k, v in p["explainer"].items() if k != "library_versions"}
    err = p["input"]["errors"]
    parts = [
        "<section><h2>Provenance</h2>",
        "<h3>Model</h3>",
        _kv(p["model"]),
        "<h3>Explainer</h3>",
        _kv(exp),
        "<h3>Input</h3>",
        _kv({k: v for k, v in p["input"].items() if k != "errors"}),
        f"<h3>Error rows ({err['count']})</h3>",
    ]
    if err["count"]:
        reasons = pd.DataFrame(
            {"reason": list(err["reasons"]), "rows": list(err["reasons"].values())}
        )
        parts += [
            '<p class="warn">These rows could not be explained and are not in the numbers '
            "above.</p>",
            _table(reasons, {"reason": "reason", "rows": "rows"}, {"rows"}),
        ]
        rows = pd.DataFrame(err["rows"])
        parts.append(_table(rows, {k: k for k in rows.columns}))
    else:
        parts.append("<p>None: every row was explained.</p>")
    parts += [
        "<h3>Library versions (explainer build)</h3>",
        _kv(p["explainer"]["library_versions"]),
        "<h3>Report</h3>",
        _kv({k: v for k, v in p["report"].items() if k != "library_versions"}),
    ]
    return "".join(parts) + "</section>"


def render(c: Content) -> str:
    p = c.provenance
    sub = (
        f"{p['input']['explained_rows']} of {p['input']['rows']} rows explained by "
        f"{p['explainer']['name']} v{p['explainer']['version']} ({p['explainer']['method']})"
    )
    body = "".join(
        [
            f"<h1>{escape(c.title)}</h1><p class='sub'>{escape(sub)}</p>",
            _importance(c),
            _categories(c),
            _tokens(c),
            "<section><h2>Prediction distribution</h2>",
            _figs(c, "predictions"),
            "</section>",
            _compare(c),
            _provenance(c),
        ]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,">'  # self-contained: no favicon request either
        f"<title>{escape(c.title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
