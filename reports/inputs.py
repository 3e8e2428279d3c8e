"""What a report aggregates: batch output read back, or a sample explained on the spot.

Both paths end in the batch output's shape (input columns, the Explanation columns, then
`status`/`error`), so everything after this module handles one format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from eaas.explain.build import read_table
from eaas.explain.config import ExplainerConfig
from eaas.explain.engine import Engine
from eaas.explain.errors import BadRequest, InvalidInput, one_line
from eaas.explain.isolate import batch_else_rows
from eaas.explain.pyfunc import load_explainer
from eaas.explain.schema import COLUMNS, REQUIRED
from eaas.reports.values import explained_values, is_mixed, rows_of, typed_frame

MAX_ERRORS_LISTED = 20


@dataclass
class ReportInput:
    """All rows read (ok and error), where they came from and how they were obtained."""

    frame: pd.DataFrame  # batch-output shape, every row
    path: str
    mode: str  # "explanations" (batch output) | "data" (explained on the spot)

    @property
    def ok(self) -> pd.DataFrame:
        return self.frame[self.frame["status"] == "ok"].reset_index(drop=True)

    @property
    def errors(self) -> pd.DataFrame:
        return self.frame[self.frame["status"] != "ok"]

    def error_summary(self) -> dict:
        """Reasons with counts, plus the first rows (their key columns) and their reason."""
        err = self.errors
        keys = _key_columns([c for c in err.columns if c not in [*COLUMNS, "status", "error"]])
        reasons = err["error"].fillna("(no reason given)").astype(str)
        rows = [
            {"row": int(i), **{k: _plain(r[k]) for k in keys}, "reason": reasons.loc[i]}
            for i, r in err.head(MAX_ERRORS_LISTED).iterrows()
        ]
        return {"count": len(err), "reasons": reasons.value_counts().to_dict(), "rows": rows}


def _key_columns(cols: list[str]) -> list[str]:
    """Id-like columns identify a row; without any, the first two input columns."""
    ids = [
        c
        for c in cols
        if str(c).lower() in ("id", "key") or str(c).lower().endswith(("_id", "_key"))
    ]
    return ids[:3] or cols[:2]


def _plain(v: object) -> object:
    """Key values as JSON-friendly scalars (numpy ints, long texts)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, str) and len(v) > 80:
        return v[:77] + "..."
    return v


def _existing(path: str | Path, field: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise BadRequest(f"{field}: no such file or folder '{p}'", field=field)
    return p


def read_explanations(path: str | Path, config: ExplainerConfig) -> ReportInput:
    """Batch output (a Parquet file or folder), checked against the explainer it must come from."""
    p = _existing(path, "explanations")
    try:
        df = pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises many types for a file that is not Parquet
        raise InvalidInput(
            f"explanations: not readable as Parquet ({type(exc).__name__})"
        ) from None
    missing = [c for c in [*REQUIRED, "status"] if c not in df.columns]
    if missing:
        raise InvalidInput(
            f"explanations: missing column '{missing[0]}' (expected eaas batch output)",
            field="explanations",
        )
    if "error" not in df.columns:
        df["error"] = None
    got = _check_rows(ReportInput(df, str(p.resolve()), "explanations"), config)
    return got


def _check_rows(inp: ReportInput, config: ExplainerConfig) -> ReportInput:
    ok = inp.ok
    if ok.empty:
        raise InvalidInput(
            f"{inp.mode}: no explained rows (all {len(inp.frame)} rows are errors)",
            field=inp.mode,
        )
    outputs = [str(o) for o in ok["output_names"].iloc[0]]
    if outputs != list(config.output_names):
        # explanations of another model would be aggregated silently otherwise
        raise InvalidInput(
            f"{inp.mode}: outputs {outputs} do not match the explainer's {config.output_names}",
            field=inp.mode,
        )
    fixed = config.inputs.fixed_features
    if fixed and [str(f) for f in ok["features"].iloc[0]] != config.features:
        raise InvalidInput(
            f"{inp.mode}: features do not match the explainer's {config.features}",
            field=inp.mode,
        )
    return inp


def model_inputs(frame: pd.DataFrame, config: ExplainerConfig) -> pd.DataFrame:
    """The explainer's input columns; from the rows' own `features`/`data` when not kept. A
    mixed-type explainer's columns are typed as it declares them (strings stay strings)."""
    cols = config.features
    if all(c in frame.columns for c in cols):
        kept = frame[cols].reset_index(drop=True)
        return typed_frame(kept, config) if is_mixed(config) else kept
    if not config.inputs.fixed_features:  # words, rejoined: close to the text, not identical
        return pd.DataFrame({cols[0]: [" ".join(map(str, d)) for d in rows_of(frame)]})
    return explained_values(frame, config)


def sample_rows(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(df) > n:
        df = df.sample(n=n, random_state=seed)
    return df.reset_index(drop=True)


def explain_data(
    path: str | Path, explainer_uri: str, config: ExplainerConfig, sample: int
) -> ReportInput:
    """A sample of a dataset explained now through the registered explainer pyfunc."""
    p = _existing(path, "data")
    try:
        raw = read_table(p, field="data")
    except Exception as exc:
        raise InvalidInput(f"data: not readable as Parquet/CSV ({type(exc).__name__})") from None
    cols = config.features
    missing = [c for c in cols if c not in raw.columns]
    if missing:
        raise InvalidInput(f"data: missing column '{missing[0]}'", field="data")
    rows = sample_rows(raw, sample, config.seed)
    out = explain_rows(load_explainer(explainer_uri), rows[cols])
    frame = pd.concat([rows, out], axis=1)
    return _check_rows(ReportInput(frame, str(p.resolve()), "data"), config)


def explain_rows(engine: Engine, x: pd.DataFrame) -> pd.DataFrame:
    """Explanation columns plus status/error, one row per row: the input rule once (bad rows
    become error rows), the good rows in one call, else one by one to isolate a failing row."""
    x = x.reset_index(drop=True)
    checked, ok, errors = engine.check_rows(x)
    rows: list[dict] = [{"status": "error", "error": e} for e in errors]
    results = batch_else_rows(
        lambda idx: engine.explain_records(checked.take(idx)), list(range(len(ok)))
    )
    for i, res in zip(ok, results, strict=True):
        if isinstance(res, BaseException):
            rows[i] = {"status": "error", "error": one_line(res)}
        else:
            rows[i] = {**res, "status": "ok", "error": None}
    return pd.DataFrame(rows, columns=[*COLUMNS, "status", "error"])
