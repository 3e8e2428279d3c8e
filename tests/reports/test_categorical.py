"""Reports of mixed-type explainers, from hand-built explained rows (no registry): the inputs
rebuilt with their types, category tables (numbers recomputed here), the beeswarm's colours,
the HTML section and categories.json, and drift over struct-form `data`."""

from __future__ import annotations

import json
from html import escape

import numpy as np
import pandas as pd
import pytest

from eaas.explain.config import ExplainerConfig
from eaas.explain.schema import from_typed, to_typed
from eaas.reports import build
from eaas.reports import figures as figs
from eaas.reports.categories import (
    categories_json,
    category_table,
    category_tables,
    mean_column,
)
from eaas.reports.drift_stats import drift_tables
from eaas.reports.html import Content, render
from eaas.reports.inputs import model_inputs
from eaas.reports.values import numeric_matrix

pytestmark = pytest.mark.fast

FEATURES = ["purpose", "income", "owner", "grade", "age"]
OUTPUTS = ["good", "bad"]
PURPOSES = ["car", "travel", "<b>home</b>", None]  # a value to escape, and a missing one
GRADES = ["A", "B", "C"]
COLUMNS = [
    {"name": "purpose", "type": "string", "categories": ["car", "travel", "<b>home</b>"],
     "nullable": True, "unseen": True},
    {"name": "income", "type": "number", "categories": [], "nullable": False, "unseen": True},
    {"name": "owner", "type": "boolean", "categories": [], "nullable": False, "unseen": True},
    {"name": "grade", "type": "category", "categories": ["A", "B"], "nullable": False,
     "unseen": True},
    {"name": "age", "type": "integer", "categories": [], "nullable": False, "unseen": True},
]  # fmt: skip


def _config(outputs: list[str] = OUTPUTS, columns: list[dict] = COLUMNS) -> ExplainerConfig:
    return ExplainerConfig(method="tree", kind="tabular", output_space="log_odds",
                           features=list(FEATURES), output_names=list(outputs), max_evals=10,
                           seed=0, columns=list(columns))  # fmt: skip


def _rows(n: int = 40, seed: int = 0, k: int = 2, struct: bool = True) -> pd.DataFrame:
    """Explained rows as batch output holds them: every other row's `data` in the struct form
    (as Parquet reads it back), the rest plain (as explained on the spot); output 0 mirrors
    output 1 when k == 2."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        data = [PURPOSES[i % 4], float(rng.normal(50_000, 9_000)), bool(i % 3 == 0),
                GRADES[i % 3], int(20 + i)]  # fmt: skip
        main = rng.normal(size=len(FEATURES))
        values = [-main, main] if k == 2 else [main * (o + 1) for o in range(k)]
        rows.append({
            "output_names": OUTPUTS if k == 2 else [f"o{o}" for o in range(k)],
            "prediction": [float(v.sum()) for v in values],
            "base_values": [0.0] * k,
            "features": list(FEATURES),
            "data": to_typed(data) if struct and i % 2 else data,
            "values": [list(v) for v in values],
            "status": "ok",
        })  # fmt: skip
    return pd.DataFrame(rows)


def _expected_means(frame: pd.DataFrame, column: str, output: int) -> dict:
    """Mean attribution per value of `column`, by hand (None: missing)."""
    j = FEATURES.index(column)
    acc: dict = {}
    for d, v in zip(frame["data"], frame["values"], strict=True):
        value = d[j]["text"] if isinstance(d[j], dict) else d[j]
        acc.setdefault(value, []).append(v[output][j])
    return {k: (len(v), sum(v) / len(v)) for k, v in acc.items()}


def test_category_table_means_counts_and_order():
    frame = _rows()
    table = category_table(frame, "purpose", OUTPUTS, "bad")
    want = _expected_means(frame, "purpose", 1)
    assert set(table["value"]) == set(want)  # the missing value is its own row: None
    for _, r in table.iterrows():
        rows, mean = want[r["value"]]
        assert r["rows"] == rows
        assert r[mean_column("bad")] == pytest.approx(mean, abs=1e-12)
        assert r[mean_column("good")] == pytest.approx(-mean, abs=1e-12)
    means = table[mean_column("bad")].tolist()
    assert means == sorted(means, reverse=True)  # which values push toward 'bad' first
    assert sum(table["rows"]) == len(frame)


def test_a_table_per_string_and_category_column_only():
    frame = _rows()
    tables = category_tables(frame, _config())
    assert list(tables) == ["purpose", "grade"]  # income, owner, age: no table
    grade = tables["grade"].set_index("value")
    for g, (rows, mean) in _expected_means(frame, "grade", 1).items():
        assert grade.loc[g, "rows"] == rows
        assert grade.loc[g, mean_column("bad")] == pytest.approx(mean, abs=1e-12)
    assert category_tables(frame, _config(columns=[])) == {}  # numbers only: none


def test_categories_json_keeps_every_output_and_null_for_missing():
    frame = _rows()
    tables = category_tables(frame, _config())
    found = json.loads(json.dumps(categories_json(tables, OUTPUTS, "bad")))
    assert found["output"] == "bad" and list(found["columns"]) == ["purpose", "grade"]
    by_value = {e["value"]: e for e in found["columns"]["purpose"]}
    want = _expected_means(frame, "purpose", 1)
    assert set(by_value) == set(want) and None in by_value
    for value, (rows, mean) in want.items():
        assert by_value[value]["rows"] == rows
        assert by_value[value]["mean_shap"]["bad"] == pytest.approx(mean, abs=1e-12)
        assert by_value[value]["mean_shap"]["good"] == pytest.approx(-mean, abs=1e-12)


def test_model_inputs_keep_each_column_type():
    frame = _rows(n=6)
    x = model_inputs(frame, _config())
    assert list(x.columns) == FEATURES
    plain = [from_typed(d) for d in frame["data"]]
    assert x["purpose"].tolist() == [r[0] for r in plain]  # strings stay strings, None stays
    assert x["purpose"].dtype == object and x["purpose"].iloc[3] is None
    assert x["income"].dtype == np.float64
    np.testing.assert_allclose(x["income"].to_numpy(), [r[1] for r in plain])
    assert x["owner"].dtype == bool and x["owner"].tolist() == [i % 3 == 0 for i in range(6)]
    assert x["age"].dtype == np.int64 and x["age"].tolist() == list(range(20, 26))
    assert isinstance(x["grade"].dtype, pd.CategoricalDtype)
    assert list(x["grade"].cat.categories) == ["A", "B", "C"]  # declared first, then unseen
    assert x["grade"].astype(str).tolist() == [GRADES[i % 3] for i in range(6)]


def test_model_inputs_missing_integers_and_numbers_only_explainers():
    frame = _rows(n=4)
    frame.at[1, "data"] = to_typed(["car", None, None, "A", None])  # a nullable row
    x = model_inputs(frame, _config())
    assert str(x["age"].dtype) == "Int64"
    assert x["age"].isna().tolist() == [False, True, False, False]
    assert str(x["owner"].dtype) == "boolean" and np.isnan(x["income"].iloc[1])
    rows = pd.DataFrame({"features": [FEATURES], "data": [[1.0, 2.0, None, 4.0, 5.0]]})
    ints = [{"name": f, "type": "integer"} for f in FEATURES]
    for numbers in (_config(columns=[]), _config(columns=ints)):  # numbers only: floats
        got = model_inputs(rows, numbers)
        assert (got.dtypes == np.float64).all() and np.isnan(got.iloc[0, 2])
    kept = pd.DataFrame({"purpose": ["car"], "income": [1.0], "owner": [True], "grade": ["B"],
                         "age": [30.0], "data": [None], "features": [None]})  # fmt: skip
    typed = model_inputs(kept, _config())  # input columns kept by the batch job: typed too
    assert typed["age"].dtype == np.int64 and isinstance(typed["grade"].dtype, pd.CategoricalDtype)


def test_beeswarm_colours_numbers_and_leaves_strings_grey(tmp_path):
    frame = _rows()
    colours = numeric_matrix(frame)
    assert colours.shape == (len(frame), len(FEATURES))
    assert np.isnan(colours[:, 0]).all() and np.isnan(colours[:, 3]).all()  # purpose, grade
    plain = [from_typed(d) for d in frame["data"]]
    np.testing.assert_allclose(colours[:, 1], [r[1] for r in plain])
    assert colours[:, 2].tolist() == [float(r[2]) for r in plain]  # booleans as 1/0
    fig = figs.beeswarm(frame, 1, FEATURES, "loan v1", "log_odds", "bad")
    assert figs.save(fig, tmp_path, "b.png") == "b.png" and (tmp_path / "b.png").stat().st_size


def _content(tmp_path, frame: pd.DataFrame, cfg: ExplainerConfig) -> Content:
    prov = {
        "model": {"name": "loan", "version": "1"},
        "explainer": {"name": "loan-explainer", "version": "1", "method": "tree",
                      "output_space": "log_odds", "library_versions": {}},
        "input": {"rows": len(frame), "explained_rows": len(frame),
                  "errors": {"count": 0, "reasons": {}, "rows": []}},
        "report": {},
    }  # fmt: skip
    return Content("SHAP report · loan v1", "feature", tmp_path, prov, {}, {})


def test_html_section_per_categorical_column(tmp_path):
    frame, cfg = _rows(), _config()
    content = _content(tmp_path, frame, cfg)
    found = build._categories(tmp_path, cfg, frame, content)
    assert json.loads((tmp_path / "categories.json").read_text()) == json.loads(json.dumps(found))
    page = render(content)
    section = page[page.index("<section id='categories'>") :]
    section = section[: section.index("</section>")]
    assert "<h3>'purpose'</h3>" in section and "<h3>'grade'</h3>" in section
    assert "&lt;b&gt;home&lt;/b&gt;" in section and "<b>home</b>" not in section  # escaped
    assert "(missing)" in section and "pushes toward bad" in section
    assert escape(mean_column("bad")) in section
    assert escape(mean_column("good")) not in section  # two classes: the mirror is left out
    table = category_tables(frame, cfg)["purpose"]
    first = table["value"].iloc[0]
    shown = "(missing)" if first is None else escape(first)
    cells = section.split("<h3>'purpose'</h3>")[1]
    assert cells.index(f"<td>{shown}</td>") < min(
        cells.index(f"<td>{escape(v or '(missing)')}</td>") for v in table["value"].iloc[1:]
    )  # rows in the table's order
    assert "String and category inputs are grey" in page and "src=" not in section


def test_html_shows_every_output_when_they_do_not_mirror(tmp_path):
    frame = _rows(k=3)
    cfg = _config(outputs=["o0", "o1", "o2"])
    content = _content(tmp_path, frame, cfg)
    build._categories(tmp_path, cfg, frame, content)
    page = render(content)
    heads = [escape(mean_column(o)) for o in ("o2", "o0", "o1")]  # the main (last) first
    positions = [page.index(f"<th>{h}</th>") for h in heads]
    assert positions == sorted(positions)


def test_numbers_only_reports_have_no_category_section(tmp_path):
    frame = _rows()
    cfg = _config(columns=[])
    content = _content(tmp_path, frame, cfg)
    assert build._categories(tmp_path, cfg, frame, content) == {}
    assert not (tmp_path / "categories.json").exists()
    assert "id='categories'" not in render(content)


def test_drift_compares_attributions_of_mixed_rows():
    base, cur = _rows(seed=1), _rows(seed=2, struct=False)
    cur["values"] = [[list(np.asarray(o) * 3) for o in v] for v in cur["values"]]
    tables, scores = drift_tables(base, cur, OUTPUTS, True, k=3)
    t = tables["bad"].set_index("feature")
    for j, f in enumerate(FEATURES):
        want_b = np.mean([abs(v[1][j]) for v in base["values"]])
        want_c = np.mean([abs(v[1][j]) for v in cur["values"]])
        assert t.loc[f, "baseline"] == pytest.approx(want_b)
        assert t.loc[f, "current"] == pytest.approx(want_c)
    assert set(scores) == set(OUTPUTS)
