"""Tiny fixture models (train in seconds) and helpers to register them in a real MLflow registry.

Only the model *inside* is small; MLflow, shap, torch and the registry are the real ones.
"""

from __future__ import annotations

import itertools
import math

import mlflow
import numpy as np
import pandas as pd
import torch

POS = ["good", "great", "excellent", "wonderful", "love", "brilliant"]
NEG = ["bad", "awful", "terrible", "boring", "hate", "dull"]
FILL = ["the", "movie", "film", "was", "plot", "acting", "a", "really", "and", "story"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PIP = ["scikit-learn", "xgboost-cpu", "lightgbm", "torch==2.13.0", "transformers"]


def tabular_data(
    n: int = 300, n_features: int = 5, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """A small binary problem with interactions, so trees split on several features."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, n_features)), columns=[f"f{i}" for i in range(n_features)])
    logit = 1.5 * x["f0"] - x["f1"] + 0.8 * x["f2"] * x["f3"] + 0.3 * x[f"f{n_features - 1}"]
    y = (logit + rng.normal(scale=0.5, size=n) > 0).astype(int).to_numpy()
    return x, y


def register(name: str, log_fn, model, example: pd.DataFrame | list | None, **kw) -> str:
    """Log `model` with `log_fn` in its own run and register it; returns the version."""
    with mlflow.start_run(run_name=name):
        info = log_fn(
            model,
            name="model",
            input_example=example,
            registered_model_name=name,
            pip_requirements=PIP,
            **kw,
        )
    return str(info.registered_model_version)


def train_xgboost(x: pd.DataFrame, y: np.ndarray):
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0).fit(x, y)


def train_lightgbm(x: pd.DataFrame, y: np.ndarray):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=20, num_leaves=8, n_jobs=1, verbose=-1).fit(x, y)


def train_logistic(x: pd.DataFrame, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500).fit(x, y)


def train_mlp(x: pd.DataFrame, y: np.ndarray):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier((8,), max_iter=300, random_state=0).fit(x, y)


def skops_types(model) -> list[str]:
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


# --- tiny text classifier --------------------------------------------------------------------


def tiny_tokenizer():
    from transformers import BertTokenizerFast

    words = SPECIAL + sorted(set(POS + NEG + FILL + [",", ".", "!"]))
    # transformers 5: vocab_file= is silently ignored (all [UNK]); vocab= works
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})


def text_data(n: int = 400, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for j in range(n):
        label = int(rng.integers(2))
        # a quarter have no polarity word and balanced labels, so "nothing said" scores ~0.5
        polar = [] if j % 4 == 0 else [str(rng.choice(POS if label else NEG))]
        words = list(rng.choice(FILL, size=4)) + polar
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.array(labels)


def train_tiny_bert(steps: int = 120, seed: int = 0):
    """A 2-layer BERT with a 2-label head that learns word polarity in a few seconds."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    model = BertForSequenceClassification(cfg)
    texts, labels = text_data(seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        idx = np.arange(step * 32, step * 32 + 32) % len(texts)
        enc = tok([texts[i] for i in idx], padding=True, return_tensors="pt")
        loss = model(**enc, labels=torch.tensor(labels[idx])).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval(), tok


# --- brute-force Shapley values --------------------------------------------------------------


def shapley_by_enumeration(v, n: int) -> np.ndarray:
    """phi_i = sum over S not containing i of |S|!(n-|S|-1)!/n! * (v(S+i) - v(S))."""
    cache: dict[frozenset, float] = {}

    def val(s: frozenset) -> float:
        if s not in cache:
            cache[s] = float(v(s))
        return cache[s]

    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for k in range(n):
            w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for s in itertools.combinations(others, k):
                fs = frozenset(s)
                phi[i] += w * (val(fs | {i}) - val(fs))
    return phi


def interventional_value(f, x: np.ndarray, background: np.ndarray):
    """v(S) = mean over background rows b of f(x on S, b elsewhere)."""

    def v(s: frozenset) -> float:
        data = background.copy()
        idx = list(s)
        data[:, idx] = x[idx]
        return float(np.mean(f(data)))

    return v


def xgb_path_value(booster, x: np.ndarray):
    """TreeSHAP's path-dependent value function: E[margin | x_S] with cover-weighted branches."""
    import json

    trees = [json.loads(t) for t in booster.get_dump(dump_format="json", with_stats=True)]
    x32 = x.astype(np.float32)

    def expect(node: dict, s: frozenset) -> float:
        if "leaf" in node:
            return node["leaf"]
        kids = {c["nodeid"]: c for c in node["children"]}
        f = booster.feature_names.index(node["split"])
        if f in s:
            go = node["yes"] if x32[f] < np.float32(node["split_condition"]) else node["no"]
            return expect(kids[go], s)
        yes, no = kids[node["yes"]], kids[node["no"]]
        return (yes["cover"] * expect(yes, s) + no["cover"] * expect(no, s)) / node["cover"]

    return lambda s: sum(expect(t, s) for t in trees)


# --- fake models for the fast tier: an Engine over a model object, no MLflow, no training -----


class SumModel:
    """A pyfunc-like regressor: 2a + 2b (+ c...), raising on a == 13 as a model bug would."""

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        self.weights = weights or {"a": 2.0, "b": 2.0}
        self.calls = 0

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        if (df["a"] == 13).any():
            raise ValueError("model crashed on a row\ndetails on a second line")
        return sum(w * df[f].to_numpy(dtype=float) for f, w in self.weights.items())


def fake_engine(method: str = "permutation", model=None, background: pd.DataFrame | None = None,
                **config):
    """An Engine over a fake pyfunc model (in-process, milliseconds): the core's real rules,
    methods and schema around a model that is only arithmetic."""
    from eaas.explain.engine import Engine
    from eaas.explain.source import SourceModel

    model = model or SumModel()
    features = list(model.weights)
    if background is None:
        rng = np.random.default_rng(0)
        background = pd.DataFrame(rng.normal(size=(8, len(features))), columns=features)
    source = SourceModel("pyfunc", model, "tabular", features, ["y"], False, background)
    return Engine(source, method, background, {"max_evals": 64, "seed": 0, **config})


# --- a mixed-type "loan" frame: strings, a category, booleans, integers and floats -----------

PURPOSES = ("car", "travel", "education", "home", "other")
REGIONS = ("north", "south", "east", "west")


def loan_data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A loan book as teams keep it: `purpose` and `region` strings, `grade` a pandas
    category, `owner` a boolean, `age` an integer, `income` and `debt` floats."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "purpose": rng.choice(PURPOSES, n),
        "region": rng.choice(REGIONS, n),
        "grade": pd.Categorical(rng.choice(list("ABCD"), n), categories=list("ABCD")),
        "owner": rng.random(n) < 0.4,
        "age": rng.integers(20, 70, n),
        "income": np.round(rng.lognormal(10.5, 0.4, n), 2),
        "debt": np.round(rng.random(n) * 0.8, 3),
    })
    score = (
        x["purpose"].map({"car": 0.3, "travel": 1.0, "education": -0.5, "home": -0.8,
                          "other": 0.2}).to_numpy()
        + x["grade"].cat.codes.to_numpy() * 0.6 - x["owner"].to_numpy() * 0.7
        + 2.0 * x["debt"].to_numpy() - (x["income"].to_numpy() - 36000) / 20000
        + rng.normal(0, 0.5, n)
    )
    return x, (score > np.median(score)).astype(int)


def loan_pipeline(final) -> object:  # noqa: ANN001 - any sklearn estimator
    """ColumnTransformer(OneHotEncoder on the strings and category, StandardScaler on the
    numbers, booleans passed through) -> `final`: the shape most tabular models have."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose", "region", "grade"]),
        ("num", StandardScaler(), ["age", "income", "debt"]),
        ("flag", "passthrough", ["owner"]),
    ])
    return Pipeline([("pre", pre), ("model", final)])


class LoanScorer(mlflow.pyfunc.PythonModel):
    """A custom pyfunc over the loan frame (a team's hand-written scorer): one `risk` number."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        weight = {"travel": 1.0, "car": 0.3, "other": 0.2, "education": -0.5, "home": -0.8}
        purpose = np.array([weight.get(str(p), 0.0) for p in model_input["purpose"]])
        grade = np.array([" ABCD".find(str(g)) for g in model_input["grade"]], dtype=float)
        z = (purpose + 0.6 * grade - 0.7 * model_input["owner"].to_numpy(dtype=float)
             + 2.0 * model_input["debt"].to_numpy(dtype=float)
             - (model_input["income"].to_numpy(dtype=float) - 36000) / 20000)
        return pd.DataFrame({"risk": 1 / (1 + np.exp(-z))})


def train_loan_lightgbm(x: pd.DataFrame, y: np.ndarray):
    """LightGBM on the loan frame's own dtypes: strings as pandas categories (native splits)."""
    from lightgbm import LGBMClassifier

    cats = x.astype({"purpose": "category", "region": "category"})
    return LGBMClassifier(n_estimators=30, num_leaves=8, min_child_samples=5, n_jobs=1,
                          verbose=-1).fit(cats, y)


def register_loan_models() -> dict[str, object]:
    """The loan models logged the way teams log them (signature and input example): a sklearn
    pipeline, LightGBM on category columns, a custom pyfunc."""
    import mlflow.lightgbm
    import mlflow.sklearn
    import mlflow.xgboost
    from sklearn.linear_model import LogisticRegression

    x, y = loan_data(400)
    example = x.head(40)
    pipe = loan_pipeline(LogisticRegression(max_iter=2000)).fit(x, y)
    register("loan-pipeline", mlflow.sklearn.log_model, pipe, example,
             skops_trusted_types=skops_types(pipe),
             signature=mlflow.models.infer_signature(x, pipe.predict_proba(x)))
    lgbm = train_loan_lightgbm(x, y)
    cats = example.astype({"purpose": "category", "region": "category"})
    register("loan-lgbm", mlflow.lightgbm.log_model, lgbm, cats)
    _log_pyfunc(example)
    xgb, hgb = train_loan_xgboost(x, y), train_loan_hgb(x, y)
    register("loan-xgb", mlflow.xgboost.log_model, xgb, cats)
    register("loan-hgb", mlflow.sklearn.log_model, hgb, cats, skops_trusted_types=skops_types(hgb))
    return {"loan-pipeline": pipe, "loan-lgbm": lgbm, "loan-pyfunc": LoanScorer(),
            "loan-xgb": xgb, "loan-hgb": hgb}


def train_loan_xgboost(x: pd.DataFrame, y: np.ndarray):
    """XGBoost with `enable_categorical` on the loan frame's category columns."""
    from xgboost import XGBClassifier

    cats = x.astype({"purpose": "category", "region": "category"})
    return XGBClassifier(n_estimators=30, max_depth=3, enable_categorical=True,
                         tree_method="hist", n_jobs=1, random_state=0).fit(cats, y)


def train_loan_hgb(x: pd.DataFrame, y: np.ndarray):
    """scikit-learn's HistGradientBoosting with categorical features from the dtypes."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    cats = x.astype({"purpose": "category", "region": "category"})
    return HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=8,
                                          categorical_features="from_dtype",
                                          random_state=0).fit(cats, y)


def _log_pyfunc(example: pd.DataFrame) -> None:
    with mlflow.start_run(run_name="loan-pyfunc"):
        mlflow.pyfunc.log_model(name="model", python_model=LoanScorer(), input_example=example,
                                registered_model_name="loan-pyfunc", pip_requirements=PIP)
