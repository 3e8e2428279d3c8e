"""Load a source model from a local MLflow model folder and describe what it is.

The explainer bundles the exact source model version (its MLflow folder), so the same loader runs
at build time and when the explainer is loaded back, in the service or a Spark worker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import Model
from mlflow.types import DataType

from eaas.explain.columns import Columns
from eaas.explain.errors import UnsupportedModel
from eaas.explain.pipelines import Split
from eaas.explain.settings import CoreSettings

TREE_TYPES = {
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
}
# Tree models whose shap raw output is a margin (log-odds for binary), not a probability.
MARGIN_TREES = {"GradientBoostingClassifier", "HistGradientBoostingClassifier"}

PredictFn = Callable[[pd.DataFrame], np.ndarray]
# transformers sequence-classification heads (config.problem_type) -> the activation of the
# outputs the model defines: its own pipeline applies the same (sigmoid for one unlabelled output)
HEADS = {
    "single_label_classification": "softmax",
    "multi_label_classification": "sigmoid",
    "regression": "identity",
}
PICKLE_FLAG = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
_PICKLE_GRANT = threading.Lock()


@dataclass
class SourceModel:
    """A loaded source model with the facts the explainer needs."""

    flavor: str  # xgboost | lightgbm | sklearn | transformers | pyfunc
    model: Any
    kind: str  # tabular | text
    feature_names: list[str]
    output_names: list[str]
    is_classifier: bool
    input_example: pd.DataFrame | None = None
    components: dict[str, Any] = field(default_factory=dict)
    settings: CoreSettings = field(default_factory=CoreSettings, repr=False)  # as loaded with
    # each input column's type as the model's signature declares it (MLflow's names: double,
    # long, string, boolean, datetime...); empty without a signature
    input_types: dict[str, str] = field(default_factory=dict)
    # tabular: each input's type and known values, set by the engine (explain/columns.py)
    columns: Columns = field(default_factory=Columns)

    @property
    def type_name(self) -> str:
        return type(self.model).__name__

    @property
    def family(self) -> str:
        """tree | linear | text | other: what `auto` picks from. A scikit-learn pipeline whose
        preprocessing maps each input column on its own (explain/pipelines.py) is of
        its final step's family: exact methods then explain it over its input columns."""
        if self.kind == "text":
            return "text"
        split = Split.of(self.model, self.flavor, self.feature_names)
        if split is not None:
            return model_family(split.final, split.flavor)
        return model_family(self.model, self.flavor)

    @property
    def categorical(self) -> dict[str, list[str]]:
        """Inputs the model itself splits as categories (LightGBM, XGBoost, HGB), each with the
        categories it stored (empty if none)."""
        found = native_categorical(self.model, self.flavor, self.feature_names)
        stored = native_categories(self.model, self.flavor, self.feature_names) if found else {}
        return {f: stored.get(f, []) for f in found}

    def predict_output(self, x: pd.DataFrame) -> np.ndarray:
        """Black-box output (n, outputs): probabilities for classifiers, raw values otherwise."""
        if self.flavor == "pyfunc":
            out = self.model.predict(x)
            arr = out.to_numpy() if hasattr(out, "to_numpy") else np.asarray(out)
            return arr.astype(float).reshape(len(x), -1)
        if self.is_classifier:
            return np.asarray(self.model.predict_proba(x), dtype=float)
        return np.asarray(self.model.predict(x), dtype=float).reshape(len(x), -1)

    @property
    def accepts_nan(self) -> bool:
        """xgboost and lightgbm route missing values; other models would fail or mislead."""
        return self.flavor in ("xgboost", "lightgbm")

    @property
    def output_space(self) -> str:
        return "probability" if self.is_classifier else "raw"


def model_family(model: Any, flavor: str) -> str:
    """tree | linear | other for one estimator (not a pipeline)."""
    mod = type(model).__module__
    if flavor in ("xgboost", "lightgbm") or type(model).__name__ in TREE_TYPES:
        return "tree"
    if mod.startswith(("xgboost.", "lightgbm.")):  # their sklearn wrappers, inside a pipeline
        return "tree"
    if mod.startswith("sklearn.linear_model") or mod.startswith("sklearn.svm._classes"):
        return "linear" if hasattr(model, "coef_") else "other"
    return "other"


def native_categorical(model: Any, flavor: str, features: list[str]) -> set[str]:
    """The features a tree library itself splits as categories (by the fitted model)."""
    if flavor not in ("lightgbm", "xgboost") and not hasattr(model, "is_categorical_"):
        return set()
    return {features[i] for i in categorical_features(model, flavor)}


def native_categories(model: Any, flavor: str, features: list[str]) -> dict[str, list[str]]:
    """The categories a tree library stored for each of its categorical features (the values
    it was trained on), by feature name; empty where it stores none."""
    idx = categorical_features(model, flavor)
    lists: list[Any] = []
    if flavor == "lightgbm":
        lists = getattr(model, "booster_", model).pandas_categorical or []
    elif flavor == "xgboost":
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        stored = booster.get_categories(export_to_arrow=True).to_arrow()
        lists = [stored[i][1].to_pylist() for i in idx if stored[i][1] is not None]
    elif getattr(model, "_preprocessor", None) is not None:  # HistGradientBoosting
        lists = list(model._preprocessor.transformers_[0][1].categories_)
    if len(lists) != len(idx):
        return {}
    return {features[i]: [str(v) for v in values] for i, values in zip(idx, lists, strict=True)}


def categorical_features(model: Any, flavor: str) -> list[int]:
    """Indices of the model's input features that it splits on as categories: LightGBM's
    categorical features, XGBoost's `c` feature type, HistGradientBoosting's `is_categorical_`."""
    if flavor == "lightgbm":
        booster = getattr(model, "booster_", model)
        dump = booster.dump_model(num_iteration=1)  # the header is enough (0 dumps every tree)
        infos = dump.get("feature_infos", {})
        return [i for i, name in enumerate(dump["feature_names"])
                if isinstance(infos.get(name), dict) and infos[name].get("values")]
    if flavor == "xgboost":
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        return [i for i, t in enumerate(booster.feature_types or []) if t == "c"]
    mask = getattr(model, "is_categorical_", None)
    return [] if mask is None else [int(i) for i in np.flatnonzero(mask)]


def load_source(path: str | Path, settings: CoreSettings | None = None) -> SourceModel:
    """Load the MLflow model folder at `path` with its native flavor when we know it."""
    settings = settings or CoreSettings()
    source = _load(str(path), settings)
    source.settings = settings
    return source


def _load(path: str, settings: CoreSettings) -> SourceModel:
    meta = Model.load(path)
    flavors = meta.flavors
    example = _input_example(meta, path)
    if "transformers" in flavors:
        return _load_transformers(path, example, settings.num_threads)
    if "xgboost" in flavors:
        import mlflow.xgboost

        model = mlflow.xgboost.load_model(path)
        _pin_threads(model, settings.num_threads)
        return _tabular("xgboost", model, meta, example)
    if "lightgbm" in flavors:
        import mlflow.lightgbm

        model = mlflow.lightgbm.load_model(path)
        _pin_threads(model, settings.num_threads)
        return _tabular("lightgbm", model, meta, example)
    if "sklearn" in flavors:
        return _tabular("sklearn", _load_sklearn(path, settings.trust_registry), meta, example)
    if "python_function" in flavors:
        import mlflow.pyfunc

        return _tabular("pyfunc", mlflow.pyfunc.load_model(path), meta, example)
    raise UnsupportedModel(f"model flavors {sorted(flavors)} are not supported")


def _load_sklearn(path: str, trusted: bool) -> Any:
    import mlflow.sklearn

    if not trusted:
        raise UnsupportedModel("sklearn models need EAAS_TRUST_REGISTRY=true to be loaded")
    # MLflow gates all sklearn deserialization (skops included) behind this flag; the registry
    # is the operator's own store, and the skops trusted-type list in MLmodel still applies.
    # Granted for this one load only, and restored after; the lock keeps two loads in two
    # threads from restoring each other's grant early.
    with _PICKLE_GRANT:
        before = os.environ.get(PICKLE_FLAG)
        os.environ[PICKLE_FLAG] = "true"
        try:
            return mlflow.sklearn.load_model(path)
        finally:
            if before is None:
                os.environ.pop(PICKLE_FLAG, None)
            else:
                os.environ[PICKLE_FLAG] = before


def _pin_threads(model: Any, n: int) -> None:
    if hasattr(model, "set_params"):
        try:
            model.set_params(n_jobs=n)
        except ValueError:
            pass


def _input_example(meta: Model, path: str) -> pd.DataFrame | None:
    try:
        example = meta.load_input_example(path)
    except Exception:  # an unreadable example only means no default background
        return None
    if isinstance(example, list) and example and all(isinstance(t, str) for t in example):
        return pd.DataFrame({"text": example})  # text models log a list of strings
    return example if isinstance(example, pd.DataFrame) else None


def _feature_names(model: Any, meta: Model, example: pd.DataFrame | None) -> list[str]:
    schema = meta.get_input_schema()
    if schema is not None and schema.has_input_names():
        return list(schema.input_names())
    names = getattr(model, "feature_names_in_", None)
    if names is None and hasattr(model, "feature_name_"):
        names = model.feature_name_
    if names is not None:
        return [str(n) for n in names]
    if example is not None:
        return [str(c) for c in example.columns]
    raise UnsupportedModel("the model has no input signature, feature names or input example")


def _tabular(flavor: str, model: Any, meta: Model, example: pd.DataFrame | None) -> SourceModel:
    features = _feature_names(model, meta, example)
    is_clf = flavor != "pyfunc" and hasattr(model, "predict_proba") and hasattr(model, "classes_")
    names = (meta.metadata or {}).get("output_names")
    if not names:
        if is_clf:
            names = [str(c) for c in model.classes_]
        else:
            schema = meta.get_output_schema()
            has_names = schema is not None and schema.has_input_names()
            names = list(schema.input_names()) if has_names else ["prediction"]
    if example is not None:
        example = example[[c for c in features if c in example.columns]]
    kind = "text" if _takes_one_string(meta, example, features) else "tabular"
    schema = meta.get_input_schema()
    types = (
        {str(n): _type_name(t) for n, t in
         zip(schema.input_names(), schema.input_types(), strict=True)}
        if schema is not None and schema.has_input_names() else {}
    )
    return SourceModel(flavor, model, kind, features, [str(n) for n in names], is_clf, example,
                       input_types=types)


def _type_name(t: Any) -> str:
    """A signature's column type as MLflow names it; a tensor spec's numeric dtype is a double."""
    if isinstance(t, np.dtype):
        return "double" if t.kind in "fiu" else str(t)
    return str(getattr(t, "name", t))


def _takes_one_string(meta: Model, example: pd.DataFrame | None, features: list[str]) -> bool:
    """A model whose input is one string column (a text pipeline, a custom text pyfunc): its
    signature says so, else its input example does."""
    if len(features) != 1:
        return False
    schema = meta.get_input_schema()
    if schema is not None and schema.has_input_names():
        return bool(schema.input_types()[0] == DataType.string)
    if example is None or features[0] not in example.columns or not len(example):
        return False
    return all(isinstance(v, str) for v in example[features[0]])


def transformers_head(config: Any) -> str:
    """softmax | sigmoid | identity: how the model's logits become its outputs, as the model
    defines it (`problem_type`; unset: sigmoid for one output, softmax for several, as the
    transformers pipeline does). A head it cannot read is refused, never guessed."""
    problem = getattr(config, "problem_type", None)
    if problem is None:
        problem = "multi_label_classification" if config.num_labels == 1 else (
            "single_label_classification"
        )
    if problem not in HEADS:
        raise UnsupportedModel(
            f"model: problem_type '{str(problem)[:60]}' is not a head eaas can read "
            f"(use one of {', '.join(HEADS)})"
        )
    return HEADS[problem]


def _load_transformers(path: str, example: pd.DataFrame | None, threads: int) -> SourceModel:
    import mlflow.transformers
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    parts = mlflow.transformers.load_model(path, return_type="components")
    model = parts["model"].eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return SourceModel(
        "transformers",
        model,
        "text",
        ["text"],
        [str(x) for x in labels],
        transformers_head(model.config) != "identity",
        input_example=example,
        components={"tokenizer": parts["tokenizer"]},
    )
