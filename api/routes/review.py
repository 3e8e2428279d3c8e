"""Read-only review page: served models -> versions -> logged charts and the latest report.

Server-rendered HTML, no script and no external assets. Artifacts are streamed through the
service, and a request only ever names a served model, a version number, an artifact kind
(`charts`, `report` or `drift`) and a file name: the run is found from the registry (the
explainer version's run, or the version's `eaas.report_run_id` / `eaas.drift_run_id` tag),
never taken from the request.

The router carries the same API-key check as /v1. The stored explanations' pages (and the
per-version list shown here) are api/routes/audit_pages.py. Each model's section also lists its
newest explanation jobs (api/jobs/store.py), linking to their JSON and results under /v1.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from eaas.api.audit.store import ExplanationStore
from eaas.api.deps import maybe_explanation_store, repository, require_key, served
from eaas.api.jobs.store import JobStore
from eaas.api.routes.audit_pages import latest_block
from eaas.explain.errors import NotFound
from eaas.explain.registry import parse_model_uri, resolve_version

_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*\.(png|html|json|csv)$")
_REPORT_FILES = {
    "report.html",
    "global_importance.json",
    "global_importance.csv",
    "provenance.json",
    "drift.html",
    "drift.json",
    "drift.csv",
}
_TYPES = {"png": "image/png", "html": "text/html; charset=utf-8", "json": "application/json",
          "csv": "text/csv; charset=utf-8"}  # fmt: skip
# the report is self-contained: nothing but inline styles and data: images may load
_CSP = {
    "report": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    "page": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
}
MAX_VERSIONS = 10
MAX_JOBS = 10  # newest jobs per model on the page; the rest are at GET /v1/jobs?model=


ARTIFACT_KINDS = ("charts", "report", "drift")

router = APIRouter(prefix="/ui", tags=["review"], dependencies=[Depends(require_key)])


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Versions that have an explainer, newest first."""
    found = client.search_model_versions(f"name = '{name}'")
    with_explainer = [mv for mv in found if "eaas.explainer" in mv.tags]
    return sorted(with_explainer, key=lambda mv: int(mv.version), reverse=True)


def _explainer_run(client: MlflowClient, mv: ModelVersion) -> tuple[ModelVersion, str]:
    """The explainer version tagged on `mv`, and its build run (`eaas build` registers an
    explainer from a run; one registered otherwise has no charts to show)."""
    exp = resolve_version(parse_model_uri(mv.tags["eaas.explainer"]), client)
    if exp.run_id is None:
        raise NotFound(f"explainer {exp.name} v{exp.version} has no build run")
    return exp, exp.run_id


def _run_for(client: MlflowClient, name: str, version: str, artifact: str) -> str:
    """The run whose artifacts `artifact` (a kind) names, resolved from the registry only."""
    if not version.isdigit():
        raise NotFound(f"model '{name}' has no version '{version}'")
    try:
        mv = client.get_model_version(name, version)
    except MlflowException:
        raise NotFound(f"model '{name}' has no version '{version}'") from None
    if artifact == "charts" and "eaas.explainer" in mv.tags:
        return _explainer_run(client, mv)[1]
    if artifact == "report" and "eaas.report_run_id" in mv.tags:
        return mv.tags["eaas.report_run_id"]
    if artifact == "drift" and "eaas.drift_run_id" in mv.tags:
        return mv.tags["eaas.drift_run_id"]
    raise NotFound(f"model '{name}' version {version} has no {artifact}")


def _artifact_path(artifact: str, path: str) -> str:
    if not _FILE.match(path) or ".." in path:
        raise NotFound(f"no artifact '{path}'")
    if artifact == "charts" and path.endswith(".png"):
        return f"charts/{path}"
    if artifact in ("report", "drift") and (path in _REPORT_FILES or path.endswith(".png")):
        return path
    raise NotFound(f"no {artifact} artifact '{path}'")


@router.get("/artifacts/{name}/{version}/{artifact}/{path}")
def artifact_file(name: str, version: str, artifact: str, path: str, request: Request) -> Response:
    """One logged chart or report file, streamed from the MLflow artifact store."""
    served(request, name)
    if artifact not in ARTIFACT_KINDS:
        raise NotFound(f"no artifact kind '{artifact}'")
    rel = _artifact_path(artifact, path)
    client = MlflowClient()
    run_id = _run_for(client, name, version, artifact)
    with tempfile.TemporaryDirectory(prefix="eaas-ui-") as tmp:
        try:
            local = client.download_artifacts(run_id, rel, tmp)
        except (MlflowException, OSError):
            raise NotFound(f"no {artifact} artifact '{path}'") from None
        body = Path(local).read_bytes()
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    if path.endswith(".html"):
        headers["Content-Security-Policy"] = _CSP["report"]
    return Response(body, media_type=_TYPES[path.rsplit(".", 1)[1]], headers=headers)


@router.get("", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    """Every served model, its versions (aliases), their explainer charts and latest report."""
    repo = repository(request)
    client = MlflowClient()
    stored = maybe_explanation_store(request)  # its latest explanations per version, when on
    # the jobs' tables, when the store is on (not deps.job_store: its 404 would fail the page)
    jobs: JobStore | None = getattr(request.app.state, "jobs", None)
    sections = [_model_section(client, name, stored, jobs) for name in repo.names()]
    html = _PAGE.format(css=_CSS, body="".join(sections) or "<p>No models are served.</p>")
    return HTMLResponse(html, headers={"Content-Security-Policy": _CSP["page"]})


def _url(name: str, version: str, artifact: str, path: str) -> str:
    return "/ui/artifacts/" + "/".join(quote(p, safe="") for p in (name, version, artifact, path))


def _model_section(
    client: MlflowClient,
    name: str,
    stored: ExplanationStore | None = None,
    jobs: JobStore | None = None,
) -> str:
    aliases: dict[str, list[str]] = {}
    for alias, v in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(v), []).append(alias)
    versions = _versions(client, name)
    parts = [f'<section id="{escape(name)}"><h2>{escape(name)}</h2>']
    for mv in versions[:MAX_VERSIONS]:
        parts.append(_version_block(client, mv, sorted(aliases.get(str(mv.version), []))))
        parts.append(latest_block(stored, name, str(mv.version)))
    if len(versions) > MAX_VERSIONS:
        parts.append(f"<p>{len(versions) - MAX_VERSIONS} older versions not shown.</p>")
    parts.append(jobs_block(jobs, name))  # jobs span versions: one list per model
    return "".join(parts) + "</section>"


def _version_block(client: MlflowClient, mv: ModelVersion, aliases: list[str]) -> str:
    name, version = mv.name, str(mv.version)
    badges = "".join(f'<span class="alias">@{escape(a)}</span>' for a in aliases)
    exp, exp_run = _explainer_run(client, mv)
    method = exp.tags.get("eaas.method", "?")
    head = (
        f'<div class="version"><h3>version {escape(version)} {badges}</h3>'
        f'<p class="meta">explainer {escape(exp.name)} v{escape(str(exp.version))} '
        f"({escape(method)})</p>"
    )
    if "eaas.report_run_id" in mv.tags:
        link = _url(name, version, "report", "report.html")
        run = client.get_run(mv.tags["eaas.report_run_id"])
        when = datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        report = (
            f'<p>Latest report: <a href="{escape(link)}">report.html</a> '
            f'<span class="meta">({when} UTC, run {escape(run.info.run_id)})</span></p>'
        )
    else:
        report = (
            f"<p class='meta'>No report yet (eaas report --model {escape(name)}/{version}).</p>"
        )
    charts = sorted(
        (a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(exp_run, "charts")),
        key=lambda p: (not p.startswith("global"), p),  # global importance first
    )
    imgs = "".join(
        f'<figure><img src="{escape(_url(name, version, "charts", c))}" alt="{escape(c)}">'
        f"<figcaption>{escape(c)}</figcaption></figure>"
        for c in charts
        if _FILE.match(c) and c.endswith(".png")
    )
    report += _drift_line(mv)  # next to the report: both are reviews of this version
    return head + report + f'<div class="charts">{imgs or "<p>No charts logged.</p>"}</div></div>'


def _drift_line(mv: ModelVersion) -> str:
    """Link to the version's latest attribution drift report (eaas drift), with its NDCG."""
    if "eaas.drift_run_id" not in mv.tags:
        return ""
    link = _url(mv.name, str(mv.version), "drift", "drift.html")
    ndcg = mv.tags.get("eaas.drift_ndcg", "?")
    return (
        f'<p>Latest drift report: <a href="{escape(link)}">drift.html</a> '
        f'<span class="meta">(NDCG {escape(ndcg)}, run {escape(mv.tags["eaas.drift_run_id"])})'
        "</span></p>"
    )


def jobs_block(jobs: JobStore | None, name: str) -> str:
    """The model's newest jobs (any version) with links to their JSON and results; nothing
    when the store is off, a line when it does not answer (the rest of the page still shows)."""
    if jobs is None:
        return ""
    try:
        found, more = jobs.page(name, limit=MAX_JOBS)
    except Exception:  # as latest_block: a store that is down must not take the page with it
        return "<div class='jobs'><p class='meta'>Jobs: store unavailable.</p></div>"
    if not found:
        return "<div class='jobs'><h3>Jobs</h3><p class='meta'>No jobs yet.</p></div>"
    head = ("<tr><th>job</th><th>version</th><th>status</th><th>done/total (failed, cancelled)</th>"
            "<th>created (UTC)</th><th>finished (UTC)</th><th>links</th></tr>")  # fmt: skip
    rows = "".join(_job_row(j) for j in found)
    tail = ""
    if more is not None:  # older ones: the listing names them all, a page at a time
        listing = escape(f"/v1/jobs?model={quote(name, safe='')}")
        tail = f"<p class='meta'>Older jobs: <a href='{listing}'>{listing}</a></p>"
    return f"<div class='jobs'><h3>Jobs</h3><table class='joblist'>{head}{rows}</table>{tail}</div>"


def _job_row(job: dict[str, Any]) -> str:
    """One job as a table row; every value escaped (the error text is the runner's, and may
    quote an instance)."""
    base = f"/v1/jobs/{quote(str(job['id']), safe='')}"
    links = {"JSON": base, "JSONL": f"{base}/results?format=jsonl",
             "Parquet": f"{base}/results?format=parquet"}  # fmt: skip
    n = job["instances"]
    status = escape(str(job["status"]))
    if job.get("error"):
        status += f" <span class='meta'>({escape(str(job['error'])[:200])})</span>"
    return (
        f"<tr><td class='id'>{escape(str(job['id']))}</td>"
        f"<td>{escape(str(job['model']['version']))}</td>"
        f"<td class='status'>{status}</td>"
        f"<td class='num'>{n['done']}/{n['total']} ({n['failed']}, {n['cancelled']})</td>"
        f"<td>{_when(job['created_at'])}</td><td>{_when(job['finished_at'])}</td><td>"
        + " ".join(f"<a href='{escape(u)}'>{k}</a>" for k, u in links.items())
        + "</td></tr>"
    )


def _when(stamp: str | None) -> str:
    """An ISO time from the store, shortened to the second (all times there are UTC)."""
    if stamp is None:
        return "<span class='meta'>&ndash;</span>"
    try:
        return escape(datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return escape(stamp)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#f6f7f9} main{max-width:1200px;margin:0 auto;padding:24px}
h1{margin:0 0 4px} .meta{color:#555;margin:2px 0}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px 20px;margin:16px 0}
.version{border-top:1px solid #eee;padding:6px 0 10px}
.alias{background:#e8f0fe;color:#1a4fa0;border-radius:10px;padding:1px 8px;font-size:.8em;
margin-left:6px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;flex:1 1 45%;max-width:560px} figure img{width:100%;height:auto;
border:1px solid #eee} figcaption{font-size:.8em;color:#555}
.jobs{border-top:1px solid #eee;padding:6px 0 10px}
.joblist{border-collapse:collapse;font-size:.85em}
.joblist th,.joblist td{border:1px solid #e3e3e3;padding:3px 8px;text-align:left}
.joblist td.id{font-family:ui-monospace,monospace} .joblist td.num{text-align:right}
"""
_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
    '<link rel="icon" href="data:,">'  # no /favicon.ico request (a 404 per page view)
    "<title>eaas · model review</title><style>{css}</style></head><body><main>"
    "<h1>Model review</h1><p class='meta'>Explainable models served here, their explainer "
    "charts (logged at build time) and latest SHAP reports. Read-only.</p>{body}</main></body>"
    "</html>"
)
