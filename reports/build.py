"""`build_report`: aggregate explanations, render the report, log it and attach it.

The Python API behind `eaas report`; the command only parses flags and prints the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd

from eaas.explain.config import ExplainerConfig
from eaas.explain.errors import BadRequest, InvalidInput
from eaas.explain.pyfunc import load_explainer
from eaas.explain.registry import ExplainerTarget, configure, resolve_explainer, use_experiment
from eaas.explain.settings import CoreSettings
from eaas.reports import aggregate as agg
from eaas.reports import categories as cats
from eaas.reports import figures as figs
from eaas.reports.html import Content, render
from eaas.reports.inputs import (
    ReportInput,
    explain_data,
    explain_rows,
    model_inputs,
    read_explanations,
    sample_rows,
)
from eaas.reports.provenance import explainer_config, provenance
from eaas.reports.publish import EXPERIMENT, attach

MAX_OUTPUTS = 4  # charts per output beyond this would bury the page; the JSON has them all
N_EXAMPLES = 4


@dataclass
class ReportResult:
    run_id: str
    report_uri: str
    output_dir: Path
    importances: dict[str, dict[str, float]]
    categories: dict = field(default_factory=dict)  # categories.json (empty: no such inputs)

    @property
    def report_path(self) -> Path:
        return self.output_dir / "report.html"


def build_report(
    model: str,
    explanations: str | Path | None = None,
    data: str | Path | None = None,
    sample: int = 200,
    output: str | Path | None = None,
    compare: str | None = None,
    words: agg.WordOptions | None = None,
) -> ReportResult:
    """Report on `model` (NAME, NAME@alias, NAME/version) from batch output or a data sample."""
    if (explanations is None) == (data is None):
        raise BadRequest("give exactly one of --explanations or --data", field="explanations")
    if sample < 1:
        raise BadRequest("sample: must be at least 1", field="sample")
    client = configure()
    target = resolve_explainer(model, client)
    cfg = explainer_config(target)
    if explanations is not None:
        inp = read_explanations(explanations, cfg)
    else:
        inp = explain_data(data, target.explainer_uri, cfg, sample)
    cmp = _compare(inp, target, cfg, compare, sample) if compare else None
    out_dir = _output_dir(output, target)
    use_experiment(EXPERIMENT)
    src = target.source
    with mlflow.start_run(run_name=f"report {src.name} v{src.version}") as run:
        imp, found = _write(out_dir, target, cfg, inp, cmp, run.info.run_id,
                           words or agg.WordOptions())  # fmt: skip
        _log_run(target, inp, compare)
        mlflow.log_artifacts(str(out_dir))
        uri = mlflow.get_artifact_uri("report.html")
    attach(client, src, run.info.run_id, uri)
    return ReportResult(run.info.run_id, uri, out_dir, agg.importance_json(imp), found)


def _output_dir(output: str | Path | None, target: ExplainerTarget) -> Path:
    if output is not None:
        out = Path(output).expanduser()
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{target.source.name}-{target.source.version}-{stamp}"
        out = CoreSettings().home_dir / "reports" / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def _log_run(target: ExplainerTarget, inp: ReportInput, compare: str | None) -> None:
    src = target.source
    mlflow.set_tags(
        {
            "eaas.model": src.name,
            "eaas.model_version": str(src.version),
            "eaas.explainer": target.explainer_uri,
        }
    )
    mlflow.log_params(
        {"input_mode": inp.mode, "input_path": inp.path[-500:], "compare": compare or ""}
    )
    mlflow.log_metrics({"rows": len(inp.frame), "explained_rows": len(inp.ok),
                        "error_rows": len(inp.errors)})  # fmt: skip


def _write(
    out_dir: Path,
    target: ExplainerTarget,
    cfg: ExplainerConfig,
    inp: ReportInput,
    cmp: dict | None,
    run_id: str,
    words: agg.WordOptions,
) -> tuple[dict[str, pd.Series], dict]:
    """Every file of the report into `out_dir`; returns the global importances and the
    category tables' JSON."""
    ok = inp.ok
    by_word = not cfg.inputs.fixed_features  # each row its own words (text)
    if by_word:  # case-folded words with a minimum count, stop-words not ranked
        imp = agg.word_importance(ok, cfg.output_names, words)
    else:
        imp = agg.global_importance(ok)
    shown = agg.shown_outputs(cfg.output_names, by_word, words, agg.mirrored(ok))
    (out_dir / "global_importance.json").write_text(json.dumps(agg.importance_json(imp), indent=1))
    agg.importance_table(imp).to_csv(out_dir / "global_importance.csv", index=False)
    prov = provenance(target, cfg, inp, run_id)
    if cmp:
        prov["compare"] = {k: cmp[k] for k in ("label", "explainer", "rows")}
    (out_dir / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
    title = f"SHAP report · {target.source.name} v{target.source.version}"
    figures = _figures(out_dir, cfg, ok, {k: v for k, v in imp.items() if k in shown}, title)
    # the page shows the shown outputs; the JSON and CSV above keep every output
    content = Content(title, cfg.inputs.player, out_dir, prov, {o: imp[o] for o in shown},
                      figures)
    if by_word:
        content.tokens = _tokens(out_dir, cfg, ok, content.figures, shown, words)
        content.push_labels = {o: agg.push_labels(cfg.output_names, o) for o in shown}
        content.examples = _examples(ok, cfg)
    found = _categories(out_dir, cfg, ok, content)
    if cmp:
        content.compare = cmp
        content.figures["compare"] = _compare_figures(out_dir, cmp)
        both = {k: agg.importance_json(cmp[k]) for k in ("current", "other")}
        (out_dir / "compare_importance.json").write_text(
            json.dumps({"rows": cmp["rows"], "other": cmp["label"], **both}, indent=1)
        )
    (out_dir / "report.html").write_text(render(content), encoding="utf-8")
    return imp, found


def _categories(out_dir: Path, cfg: ExplainerConfig, ok: pd.DataFrame, content: Content) -> dict:
    """A table per string/category input (categories.json, the page's section); {} if none."""
    tables = cats.category_tables(ok, cfg)
    if not tables:
        return {}
    main = cats.main_output(cfg)
    content.categories, content.category_output = tables, main
    content.push_labels.setdefault(main, agg.push_labels(cfg.output_names, main))
    found = cats.categories_json(tables, list(cfg.output_names), main)
    (out_dir / "categories.json").write_text(json.dumps(found, indent=1))
    return found


def _figures(
    out_dir: Path, cfg: ExplainerConfig, ok: pd.DataFrame, imp: dict[str, pd.Series], title: str
) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {"importance": [], "beeswarm": []}
    for name, series in list(imp.items())[:MAX_OUTPUTS]:
        o = cfg.output_names.index(name)
        fig = figs.importance_bar(series, name, cfg.output_space, title)
        png = figs.save(fig, out_dir, f"global_importance_{figs.slug(name)}.png")
        out["importance"].append((f"global importance, output '{name}'", png))
        if cfg.inputs.fixed_features:  # a beeswarm needs one column per feature
            fig = figs.beeswarm(ok, o, cfg.features, title, cfg.output_space, name)
            png = figs.save(fig, out_dir, f"beeswarm_{figs.slug(name)}.png")
            out["beeswarm"].append((f"beeswarm, output '{name}'", png))
    fig = figs.prediction_hist(agg.predictions(ok), cfg.output_names, cfg.output_space)
    out["predictions"] = [("prediction distribution", figs.save(fig, out_dir, "predictions.png"))]
    return out


def _tokens(
    out_dir: Path, cfg: ExplainerConfig, ok: pd.DataFrame, figures: dict, shown: list[str],
    words: agg.WordOptions,
) -> dict[str, dict[str, pd.DataFrame]]:
    tokens, figures["tokens"] = {}, []
    for name in shown[:MAX_OUTPUTS]:
        tokens[name] = agg.token_effects(ok, cfg.output_names.index(name), opts=words)
        labels = agg.push_labels(cfg.output_names, name)
        png = figs.save(
            figs.token_bar(tokens[name], name, labels), out_dir,
            f"tokens_{figs.slug(name)}.png",
        )
        figures["tokens"].append((f"top tokens, output '{name}'", png))
    return tokens


def _examples(ok: pd.DataFrame, cfg: ExplainerConfig) -> list[dict]:
    """The most and least confident rows for the last output (the 'positive' class, usually)."""
    o = len(cfg.output_names) - 1
    pred = agg.predictions(ok)[:, o]
    order = list(pred.argsort())
    picks = list(dict.fromkeys(order[-N_EXAMPLES // 2 :][::-1] + order[: N_EXAMPLES // 2]))
    return [
        {
            "output": cfg.output_names[o],
            "prediction": float(pred[i]),
            "tokens": list(ok["features"].iloc[i]),
            "values": [float(v) for v in ok["values"].iloc[i][o]],
        }
        for i in picks
    ]


def _compare(
    inp: ReportInput, target: ExplainerTarget, cfg: ExplainerConfig, ref: str, sample: int
) -> dict:
    """Explain the same rows (a sample) with the other version's explainer; both importances."""
    other = resolve_explainer(ref)
    ocfg = explainer_config(other)
    if ocfg.inputs.player != cfg.inputs.player:  # words vs features: nothing to compare
        raise BadRequest(
            f"compare: '{ref}' explains {ocfg.inputs.player}s, not {cfg.inputs.player}s",
            field="compare",
        )
    rows = sample_rows(inp.ok, sample, cfg.seed)
    out = explain_rows(load_explainer(other.explainer_uri), model_inputs(rows, ocfg))
    mask = (out["status"] == "ok").to_numpy()
    if not mask.any():
        reason = out["error"].iloc[0]
        raise InvalidInput(
            f"compare: '{ref}' explained none of the rows ({reason})", field="compare"
        )
    cur, oth = agg.global_importance(rows[mask]), agg.global_importance(out[mask])
    label = f"{other.source.name} v{other.source.version}"
    outputs = [o for o in cur if o in oth]
    return {
        "label": label,
        "explainer": other.explainer_uri,
        "rows": int(mask.sum()),
        "current": {o: cur[o] for o in outputs},
        "other": {o: oth[o] for o in outputs},
        "moves": {o: agg.rank_moves(cur[o], oth[o]) for o in outputs},
        "review_label": f"{target.source.name} v{target.source.version}",
    }


def _compare_figures(out_dir: Path, cmp: dict) -> list[tuple[str, str]]:
    out = []
    for name in list(cmp["current"])[:MAX_OUTPUTS]:
        labels = (cmp["review_label"], cmp["label"])
        fig = figs.compare_bar(cmp["current"][name], cmp["other"][name], labels, name)
        out.append((f"{labels[0]} vs {labels[1]}, output '{name}'",
                    figs.save(fig, out_dir, f"compare_{figs.slug(name)}.png")))  # fmt: skip
    return out
