"""The `eaas` command: a thin layer, each subcommand a few lines calling into a package."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any, NoReturn

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Explainability as a service.")
explainer_app = typer.Typer(no_args_is_help=True, help="Build explainers for registered models.")
app.add_typer(explainer_app, name="explainer")
explanations_app = typer.Typer(
    no_args_is_help=True, help="The service's stored explanations (audit trail)."
)
app.add_typer(explanations_app, name="explanations")
jobs_app = typer.Typer(no_args_is_help=True, help="The service's explanation jobs.")
app.add_typer(jobs_app, name="jobs")
_DEBUG: ContextVar[bool] = ContextVar("eaas_debug", default=False)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an unexpected error"),
) -> None:
    """Explainability as a service."""
    _DEBUG.set(debug)  # this invocation's switch (a context variable, not a global)


def _debug() -> bool:
    return _DEBUG.get()


def _fail(exc: Exception) -> NoReturn:
    """One line, no stack trace: expected errors carry their own message."""
    from eaas.explain.errors import one_line

    typer.echo(f"error: {one_line(exc)}", err=True)
    raise typer.Exit(code=2)


def _expected() -> tuple[type[Exception], ...]:
    from eaas.explain.errors import EaasError

    # MLflow's errors only when it was loaded (none can be raised otherwise): importing it
    # here would add over a second to the commands that never use it (`eaas jobs`)
    mlflow_errors = sys.modules.get("mlflow.exceptions")
    extra = (mlflow_errors.MlflowException,) if mlflow_errors is not None else ()
    return (EaasError, FileNotFoundError, *extra)


def _settings_error(exc: Any) -> str:
    """A bad setting, named as its environment variable, with the reason (never the value)."""
    parts = []
    for err in exc.errors():
        where = "EAAS_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
        parts.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if isinstance(exc, _expected()):
            _fail(exc)
        pydantic, pyd_settings = sys.modules.get("pydantic"), sys.modules.get("pydantic_settings")
        if pydantic is not None and isinstance(exc, pydantic.ValidationError):
            _fail(ValueError(_settings_error(exc)))
        if pyd_settings is not None and isinstance(exc, pyd_settings.SettingsError):
            _fail(exc)  # a variable that does not parse (bad JSON): its name is in the message
        if _debug():  # a bug, not the user's input: one line unless --debug
            raise
        from eaas.explain.errors import one_line

        typer.echo(f"error: unexpected {one_line(exc)} (eaas --debug ... shows the traceback)",
                   err=True)
        raise typer.Exit(code=1) from None


@explainer_app.command("build")
def explainer_build(
    model: str = typer.Option(..., help="models:/NAME/VERSION or models:/NAME@ALIAS"),
    method: str = typer.Option(
        "auto", help="auto|tree|linear|permutation|partition|kernel|text-permutation|"
        "text-kernel|text|integrated-gradients"
    ),
    background: str = typer.Option(None, help="Parquet or CSV with the model's input columns"),
    background_size: int = typer.Option(100, help="Rows sampled from the background"),
    max_evals: int = typer.Option(None, help="Evaluation budget of sampled methods"),
    seed: int = typer.Option(None, help="Seed of sampled methods"),
    tolerance: float = typer.Option(
        None, help="Sampled methods' default target error, relative to |prediction - base| "
        "(0 spends max-evals; default EAAS_DEFAULT_TOLERANCE)"
    ),
    name: str = typer.Option(None, help="Registered name (default: <source name>-explainer)"),
    long_text: str = typer.Option(
        None, help="Text longer than the model's limit: truncate (default) or window"
    ),
) -> None:
    """Build, log and register an explainer; the last line printed is its models:/ URI."""
    from eaas.explain.build import build_explainer

    res = _run(
        build_explainer,
        model,
        method=method,
        background=background,
        background_size=background_size,
        max_evals=max_evals,
        seed=seed,
        name=name,
        long_text=long_text,
        tolerance=tolerance,
    )
    typer.echo(f"method={res.method} output_space={res.output_space} run_id={res.run_id}")
    typer.echo(res.uri)


@app.command()
def demo(
    train_seconds: float = typer.Option(240, help="Time budget to fine-tune the sentiment model"),
    retrain: bool = typer.Option(False, help="Retrain demo models even if registered"),
    serve: bool = typer.Option(False, help="Then serve them on 127.0.0.1:8000"),
) -> None:
    """Train and register the demo models (alias champion) and build their explainers."""
    from eaas.demo import DEMO_MODELS, print_curl_examples, run_demo

    _run(run_demo, train_seconds=train_seconds, retrain=retrain)
    if serve:
        print_curl_examples("http://127.0.0.1:8000")
        _serve(host="127.0.0.1", port=8000, models=",".join(DEMO_MODELS), workers=1)


@app.command("serve")
def serve_cmd(
    host: str = typer.Option(None, help="Bind address [default: EAAS_HOST or 127.0.0.1]"),
    port: int = typer.Option(None, help="Port [default: EAAS_PORT or 8000]"),
    models: str = typer.Option(None, help="NAME,NAME@alias,... [default: every explainer]"),
    workers: int = typer.Option(None, help="uvicorn worker processes [default: 1]"),
    ray: bool = typer.Option(False, "--ray", help="Deploy on Ray Serve (pip install 'eaas[ray]')"),
    address: str = typer.Option(None, help="--ray: the cluster [default: a local Ray]"),
    replicas: int = typer.Option(None, help="--ray: replicas [default: 1]"),
    autoscale: str = typer.Option(None, help="--ray: MIN:MAX replicas, autoscaled"),
) -> None:
    """Serve explanations over REST (FastAPI + uvicorn, or Ray Serve with --ray)."""
    if not ray and (address or replicas or autoscale):
        _fail(ValueError("--address, --replicas and --autoscale need --ray"))
    if ray and replicas and autoscale:
        _fail(ValueError("--replicas and --autoscale: choose one"))
    _serve(host=host, port=port, models=models, workers=workers, ray=ray, ray_address=address,
           ray_replicas=replicas, ray_autoscale=autoscale)  # fmt: skip


def _serve(ray: bool = False, **flags: object) -> None:
    from eaas.api.settings import ServeSettings

    overrides = {k: v for k, v in flags.items() if v is not None}
    if ray:
        try:
            import ray.serve  # noqa: F401  (the optional extra: checked before anything starts)

            from eaas.api.ray_serve import serve_on_ray
        except ImportError:
            _fail(ImportError("--ray needs Ray Serve: pip install 'eaas[ray]'"))
        _run(lambda: serve_on_ray(ServeSettings(**overrides)))
        return
    from eaas.api.server import serve

    _run(lambda: serve(ServeSettings(**overrides)))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def batch(ctx: typer.Context) -> None:
    """Explain every row of a dataset on Spark; writes typed Parquet with status/error per row.

    Options: eaas batch --help (declared once, in eaas.batch.command).
    """
    from eaas.batch.command import main as batch_main

    raise typer.Exit(code=batch_main(ctx.args, prog="eaas batch"))


@app.command()
def report(
    model: str = typer.Option(..., help="NAME, NAME@ALIAS or NAME/VERSION of the model reviewed"),
    explanations: str = typer.Option(None, help="Batch output (Parquet file or folder)"),
    data: str = typer.Option(None, help="Parquet or CSV to explain a sample of, now"),
    sample: int = typer.Option(200, help="Rows sampled from --data (and for --compare)"),
    output: str = typer.Option(None, help="Folder [default: EAAS_HOME/reports/NAME-VERSION-TIME]"),
    compare: str = typer.Option(None, help="Version to compare with, e.g. NAME/VERSION"),
    min_count: int = typer.Option(3, help="Text: occurrences a word needs to be ranked"),
    include_stopwords: bool = typer.Option(
        False, help="Text: rank stop-words and punctuation too (always kept in the data)"
    ),
    all_outputs: bool = typer.Option(
        False, help="Text: show both outputs of a 2-class model (the first mirrors the second)"
    ),
) -> None:
    """SHAP report logged to MLflow and attached to the model version; prints its path last."""
    from eaas.reports import build_report
    from eaas.reports.aggregate import WordOptions

    words = WordOptions(min_count, include_stopwords, all_outputs)
    res = _run(build_report, model, explanations, data, sample, output, compare, words)
    typer.echo(f"run_id={res.run_id} report_uri={res.report_uri}")
    typer.echo(str(res.report_path))


@app.command()
def drift(
    model: str = typer.Option(..., help="NAME, NAME@ALIAS or NAME/VERSION (the current model)"),
    current: str = typer.Option(..., help="Batch output, or Parquet/CSV data to explain now"),
    baseline: str = typer.Option(None, help="Batch output, or Parquet/CSV data to explain now"),
    baseline_model: str = typer.Option(
        None, help="NAME/VERSION to compare with (same data when --baseline is not given)"
    ),
    output: str = typer.Option(None, help="Folder [default: EAAS_HOME/drift/NAME-VERSION-TIME]"),
    fail_below: float = typer.Option(None, help="Exit 3 when NDCG is below this"),
    sample: int = typer.Option(500, help="Rows sampled from raw data"),
    top_k: int = typer.Option(10, help="Features in the NDCG ranking"),
) -> None:
    """Attribution drift report (NDCG, per-feature tests) logged to MLflow; prints its path last."""
    from eaas.reports.drift import run_drift

    res = _run(run_drift, model, current, baseline, baseline_model, output, sample, top_k)
    typer.echo(res.summary())
    typer.echo(str(res.report_path))
    if fail_below is not None and res.ndcg < fail_below:
        typer.echo(f"error: NDCG {res.ndcg:.4f} is below --fail-below {fail_below:g}", err=True)
        raise typer.Exit(code=3)


@explanations_app.command("export")
def explanations_export(
    model: str = typer.Option(..., help="Source model NAME"),
    output: str = typer.Option(..., help="FILE.parquet"),
    version: str = typer.Option(None, help="Only this model version"),
    since: str = typer.Option(None, help="ISO 8601 date or time, inclusive"),
    until: str = typer.Option(None, help="ISO 8601 date or time, exclusive"),
) -> None:
    """Write a model's stored explanations to Parquet for offline review."""
    from eaas.explanations import export

    n = _run(export, model, output, version, since, until)
    typer.echo(f"{n} explanations -> {output}")


@explanations_app.command("verify")
def explanations_verify(explanation_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Recompute a stored explanation with its explainer version; exit 1 unless identical."""
    from eaas.explanations import verify

    verdict = _run(verify, explanation_id)
    typer.echo(verdict.summary())
    if not verdict.identical:
        raise typer.Exit(code=1)


@jobs_app.command("list")
def jobs_list(
    model: str = typer.Option(None, help="Only this served model's jobs (NAME)"),
    status: str = typer.Option(None, help="queued|running|done|failed|cancelled"),
    limit: int = typer.Option(20, help="Most jobs listed"),
) -> None:
    """Jobs, newest first: id, status, model, done/total (failed), created time."""
    from eaas.jobs import line, list_jobs

    found = _run(list_jobs, model, status, limit)
    for job in found:
        typer.echo(line(job))
    if not found:  # stdout stays empty for scripts; a person sees why
        typer.echo("no jobs", err=True)


@jobs_app.command("show")
def jobs_show(job_id: str = typer.Argument(..., metavar="ID")) -> None:
    """The job as JSON: status, progress, times (GET /v1/jobs/{id} without its instances)."""
    import json

    from eaas.jobs import show

    typer.echo(json.dumps(_run(show, job_id), indent=2))


@jobs_app.command("results")
def jobs_results(
    job_id: str = typer.Argument(..., metavar="ID"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl|parquet"),
    output: str = typer.Option(None, help="FILE [default: stdout]; parquet needs FILE.parquet"),
) -> None:
    """One row per instance, in order: index, status, error, explanation_id, Explanation fields."""
    from eaas.jobs import results

    n = _run(results, job_id, fmt, output)
    if output is not None:
        typer.echo(f"{n} results -> {output}")


@jobs_app.command("cancel")
def jobs_cancel(job_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Cancel a queued or running job; prints its new status line."""
    from eaas.jobs import cancel, line

    typer.echo(line(_run(cancel, job_id)))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
