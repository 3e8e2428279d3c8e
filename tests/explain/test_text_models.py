"""Any model whose input is one string column is explained as text, over words, through its own
predict: a scikit-learn text pipeline and a custom pyfunc, logged the way teams log them, built
with `build_explainer`, then through the pyfunc, the REST service and the Spark worker's path."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests import fixtures as fx

POS, NEG = set(fx.POS), set(fx.NEG)


class KeywordModel(mlflow.pyfunc.PythonModel):
    """A custom text pyfunc (the shape of MLflow's inference-pipeline examples): column
    `review` in, two named probabilities out."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        score = [sum((w in POS) - (w in NEG) for w in str(t).lower().split())
                 for t in model_input["review"]]
        p = np.array([1 / (1 + math.exp(-1.5 * s)) for s in score])
        return pd.DataFrame({"negative": 1 - p, "positive": p})


@pytest.fixture(scope="module")
def text_models(registry) -> dict[str, object]:
    """A TF-IDF pipeline on a `text` column and a custom pyfunc on a `review` column."""
    import mlflow.sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    texts, labels = fx.text_data(300)
    frame = pd.DataFrame({"text": texts})
    pipe = Pipeline([("ct", ColumnTransformer([("tfidf", TfidfVectorizer(), "text")])),
                     ("lr", LogisticRegression(C=10.0))]).fit(frame, labels)
    fx.register("tfidf-text", mlflow.sklearn.log_model, pipe, frame.head(20),
                skops_trusted_types=fx.skops_types(pipe),
                signature=mlflow.models.infer_signature(frame, pipe.predict_proba(frame)))
    reviews = pd.DataFrame({"review": texts[:20]})
    with mlflow.start_run(run_name="keyword-pyfunc"):
        mlflow.pyfunc.log_model(name="model", python_model=KeywordModel(),
                                input_example=reviews, registered_model_name="keyword-pyfunc",
                                pip_requirements=fx.PIP)
    return {"tfidf-text": pipe, "keyword-pyfunc": KeywordModel()}


def _own(name: str, model, texts: list[str]) -> np.ndarray:
    if name == "tfidf-text":
        return model.predict_proba(pd.DataFrame({"text": texts}))
    return model.predict(None, pd.DataFrame({"review": texts})).to_numpy()


@pytest.fixture(scope="module")
def built_text(text_models) -> dict[str, str]:
    from eaas.explain.build import build_explainer

    out = {}
    for name in text_models:
        res = build_explainer(f"models:/{name}/1")
        assert res.method == "text-permutation"  # `auto` takes a one-string-column model for text
        out[name] = res.uri
    return out


@pytest.mark.parametrize("name,column,space", [("tfidf-text", "text", "probability"),
                                               ("keyword-pyfunc", "review", "raw")])
def test_explained_over_words_through_its_own_predict(built_text, text_models, name, column,
                                                      space):
    long = " ".join(["the movie was great and the plot"] * 120)  # 840 words: no token limit
    texts = ["the movie was great", "a dull , boring plot !", long]
    out = mlflow.pyfunc.load_model(built_text[name]).predict(pd.DataFrame({column: texts}))
    own = _own(name, text_models[name], texts)
    for i, text in enumerate(texts):
        assert np.abs(np.array(out["prediction"][i]) - own[i]).max() < 1e-12
        assert list(out["features"][i]) == [text[a:b] for a, b in _spans(text)]
        assert out["additivity_error"][i] < 1e-9
        assert not out["truncated"][i]
    words, values = list(out["features"][0]), np.array(out["values"][0])
    assert words[int(np.argmax(values[1]))] == "great"  # the polar word drives 'positive'
    meta = mlflow.models.get_model_info(built_text[name]).metadata["eaas"]
    assert meta["output_space"] == space and meta["features"] == [column]


def _spans(text: str):
    from eaas.explain.text.windows import word_spans

    return word_spans(text)


def test_two_words_equal_the_enumerated_shapley_values(built_text, text_models):
    """With two players the word hierarchy is one split, so the estimate is Shapley's."""
    model = text_models["tfidf-text"]
    out = mlflow.pyfunc.load_model(built_text["tfidf-text"]).predict(
        pd.DataFrame({"text": ["boring film"]})
    )
    words = ["boring", "film"]

    def v(s: frozenset) -> float:
        kept = " ".join(w if i in s else "" for i, w in enumerate(words))
        return float(model.predict_proba(pd.DataFrame({"text": [kept]}))[0, 1])

    exact = fx.shapley_by_enumeration(v, 2)
    assert np.abs(np.array(out["values"][0][1]) - exact).max() < 1e-12


def test_the_one_input_rule_names_the_models_column(built_text):
    from eaas.explain.errors import InvalidInput

    model = mlflow.pyfunc.load_model(built_text["keyword-pyfunc"])
    with pytest.raises(InvalidInput, match=r"instances\[1\]\.review: not a string"):
        model.predict(pd.DataFrame({"review": pd.Series(["good", 3], dtype=object)}))
    with pytest.raises(InvalidInput, match=r"instances\[0\]\.review: missing feature"):
        model.predict(pd.DataFrame({"text": ["good"]}))


def test_over_rest_and_through_the_spark_workers_path(built_text, text_models):
    import pyarrow as pa

    from eaas.batch.worker import WorkerSpec, explain_record_batch
    from eaas.explain.pyfunc import load_explainer
    from tests.api.conftest import live_server

    texts = ["great acting , wonderful story", "awful"]
    with live_server(models=["tfidf-text", "keyword-pyfunc"]) as client:
        res = client.post("/v1/models/keyword-pyfunc:explain", json={"instances": texts})
        assert res.status_code == 200, res.text
        preds = [e["prediction"] for e in res.json()["explanations"]]
        bad = client.post("/v1/models/tfidf-text:explain", json={"instances": [None]})
        assert bad.status_code == 422
        assert bad.json()["error"]["message"] == "instances[0].text: missing value"
    assert np.abs(np.array(preds) - _own("keyword-pyfunc", text_models["keyword-pyfunc"],
                                         texts)).max() < 1e-12
    engine = load_explainer(built_text["keyword-pyfunc"])
    batch = pa.RecordBatch.from_pydict({"id": [1, 2, 3], "review": [texts[0], None, texts[1]]})
    out = explain_record_batch(batch, WorkerSpec("m", "", "", ("review",), ("id",)), engine)
    assert out.column("status").to_pylist() == ["ok", "error", "ok"]
    assert out.column("error").to_pylist()[1] == "review: missing value"
    assert out.schema.field("data").type == pa.list_(pa.string())
    got = out.column("prediction").to_pylist()
    assert np.abs(np.array([got[0], got[2]]) - np.array(preds)).max() < 1e-12


def test_a_refused_method_suggests_only_what_fits(built_text):
    from eaas.explain.engine import Engine
    from eaas.explain.errors import UnsupportedModel
    from eaas.explain.pyfunc import load_explainer

    source = load_explainer(built_text["keyword-pyfunc"]).source
    with pytest.raises(UnsupportedModel, match=r"does not apply to a text model "
                                             r"\(use text-permutation or text-kernel or text\)$"):
        Engine(source, "tree", None, {"max_evals": 8, "seed": 0})
    with pytest.raises(UnsupportedModel, match="needs a transformers text classifier"):
        Engine(source, "integrated-gradients", None, {"max_evals": 8, "seed": 0})
