"""`eaas explanations`: offline use of the explanation store the service writes; replay one
explanation (`verify`) and `export` a model's explanations to Parquet.

Both read the store the service writes (same settings: EAAS_STORE_URL or EAAS_HOME). `verify`
loads the exact explainer version from the registry and recomputes with the stored input and
parameters (seed included) through the engine's one rule (`check`, then `explain_records`);
identical means equal to the last bit, field by field. Where only the input's SHA-256 was kept,
a tabular explanation is replayed from its own `features` and `data` when they hash to it.
`export` writes mixed-type `data` in its struct form (explain/schema.py `to_typed`).
Command-line only: the REST adapter never imports this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from eaas.api.audit import parse_time, store_url
from eaas.api.audit.store import ExplanationStore, explanations, input_digest, to_record
from eaas.api.errors import Unavailable
from eaas.api.render import null_missing
from eaas.api.settings import ServeSettings
from eaas.explain.engine import Engine
from eaas.explain.errors import BadRequest, NotFound
from eaas.explain.pyfunc import load_explainer
from eaas.explain.registry import configure
from eaas.explain.schema import ADDED, COLUMNS, from_typed, typed_data


@dataclass
class Verdict:
    id: str
    explainer_uri: str
    identical: bool
    differences: list[str] = field(default_factory=list)
    rebuilt: bool = False  # the input was not stored: rebuilt from the explanation, same SHA-256

    def summary(self) -> str:
        how = " (input rebuilt from its features and data, SHA-256 equal)" if self.rebuilt else ""
        if self.identical:
            return f"identical: {self.id} recomputed with {self.explainer_uri}{how}"
        return f"DIFFERENT: {self.id} recomputed with {self.explainer_uri}{how}: " + "; ".join(
            self.differences
        )


def open_offline(url: str | None = None) -> ExplanationStore:
    return ExplanationStore(url or store_url(ServeSettings()))


def _fetch(url: str | None, fn):
    """Run `fn(store)`; a database that does not answer is one clear error, not a traceback."""
    store = open_offline(url)
    try:
        return fn(store)
    except SQLAlchemyError as exc:
        raise Unavailable(f"explanation store unavailable ({type(exc).__name__})") from None
    finally:
        store.engine.dispose()


def load_engine(uri: str) -> Engine:
    configure()
    return load_explainer(uri)


def recompute(engine: Engine, instance: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The engine calls the service makes for one instance (the stored one, as it was sent),
    JSON-normalized like a response."""
    out = engine.explain_records(engine.check([instance], params))[0]
    return json.loads(json.dumps(null_missing(out)))


def compare(stored: dict[str, Any], got: dict[str, Any]) -> list[str]:
    diffs = []
    for k in COLUMNS:
        if k in ADDED and k not in stored:  # stored before the field existed
            continue
        if json.dumps(stored.get(k)) != json.dumps(got.get(k)):
            detail = ""
            if k in ("values", "prediction", "base_values"):
                try:
                    a, b = np.asarray(stored[k], float), np.asarray(got[k], float)
                    detail = f" (max |diff| {np.max(np.abs(a - b)):.3g})"
                except (ValueError, TypeError):
                    detail = " (shapes differ)"
            diffs.append(f"{k} differs{detail}")
    return diffs


def verify(id_: str, url: str | None = None) -> Verdict:
    """Recompute a stored explanation through its registered explainer version and compare."""
    rec = _fetch(url, lambda store: store.get(id_))
    if rec is None:
        raise NotFound(f"no stored explanation with id '{id_}'")
    instance, rebuilt = replay_input(rec)
    e = rec["explainer"]
    uri = f"models:/{e['name']}/{e['version']}"
    got = recompute(load_engine(uri), instance, rec["parameters"])
    diffs = compare(rec["explanation"], got)
    return Verdict(id_, uri, not diffs, diffs, rebuilt)


def replay_input(rec: dict[str, Any]) -> tuple[Any, bool]:
    """The instance to replay, and whether it was rebuilt: the stored input; else, for a tabular
    explanation, the row its `features` and `data` hold (each value's type kept: strings stay
    strings), only when its SHA-256 is the stored one, i.e. provably the input that was sent."""
    if rec["input"] is not None:
        if input_digest(rec["input"]) != rec["input_sha256"]:
            raise BadRequest("input: does not match its stored SHA-256", field="input")
        return rec["input"], False
    exp = rec["explanation"]
    feats, data = list(exp.get("features") or []), from_typed(exp.get("data"))
    if feats and feats != data and len(feats) == len(data):  # words: the text is not rebuilt
        row = dict(zip(feats, data, strict=True))
        if input_digest(row) == rec["input_sha256"]:
            return row, True
    raise BadRequest(
        "input: only its SHA-256 was stored (EAAS_STORE_INPUTS=false) and the explanation's "
        "values do not rebuild it; cannot replay",
        field="input",
    )


def export(
    model: str,
    output: str | Path,
    version: str | None = None,
    since: str | None = None,
    until: str | None = None,
    url: str | None = None,
) -> int:
    """A model's stored explanations into one Parquet file (typed Explanation columns)."""
    out = Path(output).expanduser()
    if out.suffix != ".parquet":
        raise BadRequest("output: must be a .parquet file", field="output")
    t = explanations
    q = sa.select(t).where(t.c.model_name == model)
    if version is not None:
        q = q.where(t.c.model_version == str(version))
    s_ms, u_ms = parse_time(since, "since"), parse_time(until, "until")
    if s_ms is not None:
        q = q.where(t.c.created_ms >= s_ms)
    if u_ms is not None:
        q = q.where(t.c.created_ms < u_ms)

    def query(store: ExplanationStore) -> list[dict[str, Any]]:
        with store.engine.connect() as conn:
            return [to_record(r) for r in conn.execute(q.order_by(t.c.created_ms, t.c.id))]

    records = _fetch(url, query)
    rows = [_flat(r) for r in records]
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = [*_META, *COLUMNS]
    frame = pd.DataFrame(rows, columns=cols)
    frame["data"] = pd.Series(typed_data(frame["data"].tolist()), index=frame.index, dtype=object)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    frame.to_parquet(out, index=False)
    return len(frame)


_META = ["id", "created_at", "request_id", "model_name", "model_version", "explainer_name",
         "explainer_version", "method", "parameters", "seed", "input", "input_sha256"]  # fmt: skip


def _flat(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "created_at": r["created_at"],
        "request_id": r["request_id"],
        "model_name": r["model"]["name"],
        "model_version": r["model"]["version"],
        "explainer_name": r["explainer"]["name"],
        "explainer_version": r["explainer"]["version"],
        "method": r["explainer"]["method"],
        "parameters": json.dumps(r["parameters"], sort_keys=True),
        "seed": r["seed"],
        "input": None if r["input"] is None else json.dumps(r["input"]),
        "input_sha256": r["input_sha256"],
        **{k: r["explanation"].get(k) for k in COLUMNS},
    }
