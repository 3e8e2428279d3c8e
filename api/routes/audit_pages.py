"""Review pages of stored explanations: one page per explanation (a link to paste in a review).

`/ui/explanations/{id}`: the bar chart, the input with each value's attribution, provenance.
`latest_block` is the per-version list on `/ui`. Same rules as the review page
(api/routes/review.py): no script, no external assets, API keys checked.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from eaas.api.audit import read_one
from eaas.api.audit.store import ExplanationStore
from eaas.api.deps import explanation_store, require_key
from eaas.api.render import explanation_png, shown_output
from eaas.explain.plots import approximation_note

LATEST = 5
_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


router = APIRouter(prefix="/ui", tags=["review"], dependencies=[Depends(require_key)])


def page_url(id_: str) -> str:
    return f"/ui/explanations/{quote(id_, safe='')}"


def _record(request: Request, id_: str) -> dict[str, Any]:
    return read_one(explanation_store(request), id_)


@router.get("/explanations/{id}/chart.png")
def chart(id: str, request: Request) -> Response:
    rec = _record(request, id)
    return Response(explanation_png(rec["explanation"], rec["model"]), media_type="image/png",
                    headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip


@router.get("/explanations/{id}", response_class=HTMLResponse)
def explanation_page(id: str, request: Request) -> HTMLResponse:
    """One stored explanation: chart, inputs with attributions, provenance."""
    rec = _record(request, id)
    exp = rec["explanation"]
    o = shown_output(exp)
    out_name = exp["output_names"][o]
    m, e = rec["model"], rec["explainer"]
    title = f"{m['name']} v{m['version']} · explanation {rec['id']}"
    prov = [
        ("id", rec["id"]),
        ("time (UTC)", rec["created_at"]),
        ("request id", rec["request_id"] or ""),
        ("model", f"{m['name']} version {m['version']}"),
        ("explainer", f"{e['name']} version {e['version']} ({e['method']})"),
        ("parameters", json.dumps(rec["parameters"], sort_keys=True)),
        ("seed", str(rec["seed"])),
        ("input SHA-256", rec["input_sha256"]),
        ("prediction", ", ".join(f"{n}: {p:.4g}" for n, p in
                                 zip(exp["output_names"], exp["prediction"], strict=True))),
        ("base values", ", ".join(f"{b:.4g}" for b in exp["base_values"])),
        ("additivity error", f"{exp['additivity_error']:.3g}"),
        ("approximation", approximation_note(exp, o)),
        ("replay", f"eaas explanations verify {rec['id']}"),
    ]  # fmt: skip
    prov_html = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in prov)
    body = (
        f"<h1>{escape(title)}</h1>"
        f"<p class='meta'>Stored explanation as the service returned it. Output shown: "
        f"'{escape(str(out_name))}' (the predicted one).</p>"
        f"<div class='charts'><figure><img src='{escape(page_url(rec['id']))}/chart.png' "
        f"alt='bar chart of this explanation'></figure>"
        f"<table class='prov'>{prov_html}</table></div>"
        f"<h2>Input and attributions</h2>{_inputs_table(rec, o)}"
    )
    html = _PAGE.format(title=escape(title), css=_CSS, body=body)
    return HTMLResponse(html, headers={"Content-Security-Policy": _CSP})


def _inputs_table(rec: dict[str, Any], o: int) -> str:
    exp = rec["explanation"]
    errs = exp.get("approximation_error")  # absent on explanations stored before it existed
    head = (
        "<tr><th>feature</th><th>value</th>"
        + "".join(f"<th>SHAP '{escape(str(n))}'</th>" for n in exp["output_names"])
        + ("<th>standard error</th>" if errs else "")
        + "</tr>"
    )
    rows = []
    for j, (f, d) in enumerate(zip(exp["features"], exp["data"], strict=True)):
        cells = "".join(f"<td class='num'>{v[j]:+.4g}</td>" for v in exp["values"])
        if errs:
            cells += f"<td class='num'>&plusmn;{errs[o][j]:.2g}</td>"
        rows.append(f"<tr><td>{escape(str(f))}</td><td>{_value(d)}</td>{cells}</tr>")
    note = ""
    if not rec["input_stored"]:
        note = "<p class='meta'>The raw input was not stored (EAAS_STORE_INPUTS=false); the "
        note += "values above are those the explanation carries.</p>"
    elif isinstance(rec["input"], str):
        note = f"<p class='meta'>Input text: {escape(rec['input'])}</p>"
    return f"{note}<table class='inputs'>{head}{''.join(rows)}</table>"


def _value(v: Any) -> str:
    """An input value as text, escaped: as it was received (a string as written, a number in
    full, true/false); a missing one says so."""
    if v is None:
        return "<span class='meta'>missing</span>"
    if isinstance(v, bool):
        return "true" if v else "false"
    return escape(str(v))


def latest_block(store: ExplanationStore | None, name: str, version: str) -> str:
    """The newest stored explanations of one model version, for the /ui page."""
    if store is None:
        return ""
    try:
        items, _ = store.page(name, version, limit=LATEST)
    except Exception:  # the store being down must not take the review page with it
        return "<p class='meta'>Stored explanations: store unavailable.</p>"
    if not items:
        return "<p class='meta'>No stored explanations yet.</p>"
    lis = "".join(
        f"<li><a href='{escape(page_url(r['id']))}'>{escape(r['id'])}</a> "
        f"<span class='meta'>{escape(r['created_at'])} · prediction "
        f"{escape(', '.join(f'{p:.3g}' for p in r['explanation']['prediction']))}</span></li>"
        for r in items
    )
    return f"<p>Latest stored explanations:</p><ul class='stored'>{lis}</ul>"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#f6f7f9} main{max-width:1200px;margin:0 auto;padding:24px;background:#fff}
h1{font-size:1.4em} .meta{color:#555} .charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;flex:1 1 50%;max-width:640px} figure img{width:100%;border:1px solid #eee}
table{border-collapse:collapse;font-size:.9em} th,td{border:1px solid #e3e3e3;padding:3px 8px;
text-align:left;vertical-align:top} .prov{flex:1 1 35%} .prov td{word-break:break-all}
td.num{text-align:right;font-variant-numeric:tabular-nums}
"""
_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
    "<title>{title}</title><style>{css}</style></head><body><main>"
    "<p><a href='/ui'>&larr; model review</a></p>{body}</main></body></html>"
)
