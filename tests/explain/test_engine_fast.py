"""The engine's surface over a fake model (tests/fixtures.py: `fake_engine`, `SumModel`): the
rules (parameters before instances, per-row verdicts), exact numbers on an additive model,
seeding, the methods registry and the capabilities the engine reads. In-process, no MLflow
registry, no training: the fast tier (docs/development.md, "Test tiers")."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from eaas.explain import methods
from eaas.explain.engine import Engine
from eaas.explain.errors import BadRequest, InvalidInput, MissingBackground, UnsupportedModel
from eaas.explain.method import Capabilities
from eaas.explain.methods import METHODS, Entry, choose, method_class
from eaas.explain.source import SourceModel
from eaas.explain.tabular.base import TabularMethod
from eaas.explain.tabular.permutation import PermutationMethod
from tests.fixtures import SumModel, fake_engine

pytestmark = pytest.mark.fast

W = {"a": 2.0, "b": 2.0}  # SumModel's default weights: 2a + 2b


def _records(engine: Engine, rows, params: dict | None = None) -> list[dict]:
    return engine.explain_records(engine.check(rows, params))


# --- the rules: parameters first, then every instance -----------------------------------------


def test_a_bad_parameter_is_reported_before_a_bad_instance():
    engine = fake_engine()
    bad_rows = [{"a": 1.0, "b": 2.0}, {"a": "x", "b": 1.0}]
    with pytest.raises(InvalidInput) as exc:
        engine.check(bad_rows, {"seed": -1})
    assert exc.value.field == "parameters.seed"
    assert exc.value.message.startswith("parameters.seed: ")
    # the same rows with good parameters: now the instance is the error, named by position
    with pytest.raises(InvalidInput) as exc:
        engine.check(bad_rows, {"seed": 3})
    assert exc.value.field == "instances[1].a"
    assert exc.value.message == "instances[1].a: not a number"


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"seed": 2**32}, "parameters.seed", "must be between 0 and 4294967295"),
        ({"seed": 1.5}, "parameters.seed", "must be an integer"),
        ({"max_evals": 0}, "parameters.max_evals", "must be at least 1"),
        # permutation's own budget rule: 2 passes over 2 features + the baseline
        ({"max_evals": 4}, "parameters.max_evals", "permutation needs at least 5 for 2 features"),
        ({"colour": 1}, "parameters.colour", "unknown parameter"),
    ],
)
def test_parameters_are_named_with_their_reason(params, field, reason):
    with pytest.raises(InvalidInput) as exc:
        fake_engine().check([{"a": 1.0, "b": 2.0}], params)
    assert exc.value.field == field
    assert exc.value.message == f"{field}: {reason}"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"a": 1.0}, "instances[1].b: missing feature"),
        ({"a": 1.0, "b": 2.0, "c": 3.0}, "instances[1].c: unexpected feature (not a model input)"),
        ({"a": float("nan"), "b": 2.0},
         "instances[1].a: missing value and the model cannot take it"),
        ({"a": 1.0, "b": float("inf")}, "instances[1].b: infinite value"),
        ({"a": True, "b": 2.0}, "instances[1].a: not a number"),
        ({"a": 1e39, "b": 2.0}, "instances[1].a: out of range (magnitude above 3.4e38)"),
    ],
)
def test_a_bad_instance_is_named_by_position_and_field(row, message):
    with pytest.raises(InvalidInput) as exc:
        fake_engine().check([{"a": 0.0, "b": 0.0}, row])
    assert exc.value.message == message


def test_checked_records_are_floats_in_the_models_feature_order():
    checked = fake_engine().check([{"b": 2, "a": 1}, {"b": -0.5, "a": 3.25}], {"seed": 9})
    assert isinstance(checked.data, np.ndarray) and checked.data.dtype == np.float64
    assert checked.data.tolist() == [[1.0, 2.0], [3.25, -0.5]]
    assert (checked.params.seed, checked.params.max_evals) == (9, 64)  # 64: fake_engine's default
    assert checked.take([1, 0]).data.tolist() == [[3.25, -0.5], [1.0, 2.0]]


def test_check_rows_reports_bad_rows_per_row_and_explains_the_good_ones():
    engine = fake_engine()
    frame = pd.DataFrame(
        {
            "a": [1.0, "x", 0.5, "1.5", 2.0],  # "1.5": a number written as text (CSV) is read
            "b": [0.0, 1.0, np.nan, -1.0, 1e39],
        },
        dtype=object,
    )
    checked, ok, errors = engine.check_rows(frame)
    assert errors == [
        None,
        "a: not a number",
        "b: missing value and the model cannot take it",
        None,
        "b: out of range (magnitude above 3.4e38)",
    ]
    assert ok == [0, 3]
    assert checked.data.tolist() == [[1.0, 0.0], [1.5, -1.0]]
    records = engine.explain_records(checked)
    mean = engine.method.background.to_numpy().mean(axis=0)
    for rec, x in zip(records, checked.data, strict=True):
        assert np.abs(np.array(rec["values"][0]) - np.array([2.0, 2.0]) * (x - mean)).max() < 1e-12


def test_check_rows_still_judges_parameters_first():
    frame = pd.DataFrame({"a": ["x"], "b": [1.0]}, dtype=object)
    with pytest.raises(InvalidInput) as exc:
        fake_engine().check_rows(frame, {"max_evals": -3})
    assert exc.value.field == "parameters.max_evals"


# --- numbers -------------------------------------------------------------------------------------


def test_permutation_is_exact_on_an_additive_model():
    model = SumModel({"a": 2.0, "b": -3.0, "c": 0.5})
    engine = fake_engine(model=model)
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(5, 3)), columns=["a", "b", "c"])
    out = _records(engine, x)
    bg = engine.method.background.to_numpy()
    w = np.array(list(model.weights.values()))
    for rec, row in zip(out, x.to_numpy(), strict=True):
        assert rec["output_names"] == ["y"] and rec["features"] == ["a", "b", "c"]
        assert np.abs(np.array(rec["values"]) - w * (row - bg.mean(axis=0))).max() < 1e-12
        assert abs(rec["prediction"][0] - float(w @ row)) < 1e-12  # the model's own output
        assert abs(rec["base_values"][0] - float((bg @ w).mean())) < 1e-12
        assert rec["additivity_error"] < 1e-12
        assert rec["data"] == row.tolist()


class Interacting(SumModel):
    """Products of features: permutation's estimate depends on the orders it draws."""

    def __init__(self) -> None:
        super().__init__(dict.fromkeys("abcde", 1.0))

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        return (df["a"] * df["b"] + 3 * df["c"] * df["d"] * df["e"] - df["a"] * df["e"]).to_numpy()


def test_same_seed_same_numbers_whatever_the_engine_or_the_batch():
    rng = np.random.default_rng(2)
    x = pd.DataFrame(rng.normal(size=(4, 5)), columns=list("abcde"))
    p = {"max_evals": 11, "seed": 7}  # one antithetic permutation per row
    first = _records(fake_engine(model=Interacting()), x, p)
    again = _records(fake_engine(model=Interacting()), x, p)
    alone = _records(fake_engine(model=Interacting()), x.iloc[[2]], p)
    other = _records(fake_engine(model=Interacting()), x, {**p, "seed": 8})
    assert [r["values"] for r in first] == [r["values"] for r in again]
    assert alone[0]["values"] == first[2]["values"]  # a row's numbers do not depend on its batch
    assert [r["values"] for r in other] != [r["values"] for r in first]  # the seed is used


# --- the methods registry ------------------------------------------------------------------------


class _Fake:
    """A model object SourceModel.family classifies by its type name and module only."""


def _source(kind: str = "tabular", flavor: str = "pyfunc", model: object | None = None):
    features = ["text"] if kind == "text" else ["a", "b"]
    return SourceModel(flavor, model or _Fake(), kind, features, ["y"], False)


def _named(name: str, module: str, **attrs) -> object:
    return type(name, (), {"__module__": module, **attrs})()


def test_method_class_finds_the_registered_class():
    assert method_class("permutation") is PermutationMethod
    assert METHODS == tuple(methods.REGISTRY)
    assert {"tree", "linear", "permutation", "partition", "kernel", "text"} <= set(METHODS)


@pytest.mark.parametrize("name", ["magic", "", "Permutation"])
def test_an_unknown_method_is_a_bad_request_naming_method(name):
    with pytest.raises(BadRequest) as exc:
        method_class(name)
    assert exc.value.field == "method"
    assert exc.value.message.startswith(f"method: unknown '{name}'; use auto or one of tree, ")
    with pytest.raises(BadRequest):
        choose(_source(), name)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (_source(flavor="xgboost"), "tree"),
        (_source(flavor="lightgbm"), "tree"),
        (_source(flavor="sklearn", model=_named("RandomForestRegressor", "sklearn.ensemble")),
         "tree"),
        (_source(flavor="sklearn",
                 model=_named("LogisticRegression", "sklearn.linear_model._logistic", coef_=[1])),
         "linear"),
        # a linear module without coefficients is no linear model: the black box
        (_source(flavor="sklearn", model=_named("Lars", "sklearn.linear_model._least_angle")),
         "permutation"),
        (_source(flavor="sklearn", model=_named("MLPClassifier", "sklearn.neural_network")),
         "permutation"),
        (_source(), "permutation"),
        (_source("text", flavor="transformers"), "text-permutation"),
    ],
)
def test_auto_chooses_by_the_models_family(source, expected):
    assert choose(source, "auto") == expected


def test_a_named_method_is_kept_and_a_family_nothing_explains_is_refused(monkeypatch):
    assert choose(_source(flavor="xgboost"), "kernel") == "kernel"  # any registered name
    target = methods.REGISTRY["permutation"].target
    monkeypatch.setitem(methods.REGISTRY, "permutation", Entry(target))  # `auto` no longer picks it
    with pytest.raises(UnsupportedModel, match="no method explains a model of family 'other'"):
        choose(_source(), "auto")


@pytest.mark.parametrize("name", ["text", "integrated-gradients"])
def test_a_text_method_on_a_tabular_model_is_unsupported(name):
    with pytest.raises(UnsupportedModel) as exc:
        fake_engine(name)
    assert exc.value.message == (
        f"method '{name}' does not apply to a tabular model "
        "(use tree or linear or permutation or partition or kernel)"
    )


def test_a_tabular_method_on_a_text_model_is_unsupported():
    with pytest.raises(UnsupportedModel, match=r"'permutation' does not apply to a text model "
                                               r"\(use text-permutation or text-kernel or text "
                                               r"or integrated-gradients\)"):
        methods.make("permutation", _source("text", flavor="transformers"), None)


# --- capabilities, read by the engine ------------------------------------------------------------


class Serial(TabularMethod):
    """Exact, not re-entrant, priced: the engine must lock around it and ask it for the price;
    it records how many calls ran at once."""

    name = "serial"
    capabilities = Capabilities(inputs="tabular", exact=True, reentrant=False)

    def __init__(self, source, background) -> None:
        super().__init__(source, background)
        self.inside = 0
        self.most = 0
        self.guard = threading.Lock()

    def _compute(self, x, max_evals, seed):
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            time.sleep(0.05)  # long enough for a second thread to arrive
            n, f = x.shape
            return np.zeros((n, 1, f)), np.zeros((n, 1)), np.zeros((n, 1))
        finally:
            with self.guard:
                self.inside -= 1

    def cost(self, data, params) -> int:
        return len(data) * params.max_evals


class Parallel(Serial):
    """Re-entrant: the engine runs it without its lock (two calls meet at a barrier)."""

    name = "parallel"
    capabilities = Capabilities(inputs="tabular", exact=False, reentrant=True)
    meet = threading.Barrier(2, timeout=10)

    def _compute(self, x, max_evals, seed):
        if len(x) == 1:
            self.meet.wait()  # raises BrokenBarrierError unless the other call is inside too
        return super()._compute(x, max_evals, seed)


@pytest.fixture()
def fakes(monkeypatch):
    for cls in (Serial, Parallel):
        monkeypatch.setitem(methods.REGISTRY, cls.name, Entry(f"{__name__}:{cls.__name__}"))


def _two_threads(engine: Engine) -> list[Exception]:
    checked = engine.check([{"a": 1.0, "b": 2.0}])
    errors: list[Exception] = []

    def run() -> None:
        try:
            engine.explain_records(checked)
        except Exception as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return errors


def test_the_engine_reads_exact_and_reentrant_from_the_method(fakes):
    serial, parallel, perm = fake_engine("serial"), fake_engine("parallel"), fake_engine()
    assert (serial.exact, serial.reentrant) == (True, False)
    assert (parallel.exact, parallel.reentrant) == (False, True)
    assert (perm.exact, perm.reentrant) == (False, True)  # PermutationMethod's declaration
    assert serial.config.kind == serial.inputs.kind == "tabular"


def test_a_method_that_is_not_reentrant_runs_one_call_at_a_time(fakes):
    serial = fake_engine("serial")
    assert _two_threads(serial) == []
    assert serial.method.most == 1


def test_a_reentrant_method_runs_calls_at_once(fakes):
    parallel = fake_engine("parallel")
    assert _two_threads(parallel) == []
    assert parallel.method.most == 2


def test_price_is_the_methods_cost_and_zero_for_the_tabular_methods(fakes):
    rows = [{"a": 1.0, "b": 2.0}] * 3
    for name in ("permutation", "partition", "kernel"):
        engine = fake_engine(name)
        assert engine.price(engine.check(rows)) == 0
    serial = fake_engine("serial")
    assert serial.price(serial.check(rows, {"max_evals": 10})) == 30


def test_a_method_that_needs_background_is_refused_without_one():
    with pytest.raises(MissingBackground, match="method 'permutation' needs background data"):
        Engine(_source(), "permutation", None, {"max_evals": 64, "seed": 0})
