"""Every transformers sequence-classification head as the model defines it: single-label
(softmax), multi-label (a sigmoid per label), regression (raw outputs). `prediction` is the
model's own output, for `text` and `integrated-gradients`; the 2-class shortcut (class 0 =
1 - class 1) only for a 2-label softmax; a head eaas cannot read is refused at build."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eaas.explain.engine import Engine
from eaas.explain.errors import UnsupportedModel
from eaas.explain.source import SourceModel, transformers_head
from tests.fixtures import tiny_tokenizer

TEXTS = ["the movie was great", "a dull and boring plot , really bad"]


def tiny_bert(num_labels: int, problem_type: str | None, seed: int = 0):
    """A random 2-layer BERT with the given head (its numbers need no training to be checked:
    the oracle is the model's own forward pass)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    labels = {i: f"label_{i}" for i in range(num_labels)}
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                     num_labels=num_labels, id2label=labels,
                     label2id={v: k for k, v in labels.items()}, problem_type=problem_type)
    return BertForSequenceClassification(cfg).eval(), tok


def _source(model, tok) -> SourceModel:
    clf = transformers_head(model.config) != "identity"
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return SourceModel("transformers", model, "text", ["text"], names, clf,
                       components={"tokenizer": tok})


def _own_output(model, tok, text: str, activation) -> np.ndarray:
    with torch.inference_mode():
        logits = model(**tok(text, return_tensors="pt")).logits[0]
    return activation(logits).double().numpy()


HEADS = [  # (labels, problem_type, the model's own activation, output space)
    (3, "single_label_classification", lambda z: torch.softmax(z, -1), "probability"),
    (2, None, lambda z: torch.softmax(z, -1), "probability"),
    (3, "multi_label_classification", torch.sigmoid, "probability"),
    (2, "multi_label_classification", torch.sigmoid, "probability"),
    (1, "regression", lambda z: z, "raw"),
    (2, "regression", lambda z: z, "raw"),
]


@pytest.mark.parametrize("method", ["text", "integrated-gradients"])
@pytest.mark.parametrize("labels,problem,activation,space", HEADS)
def test_prediction_is_the_models_own_output(method, labels, problem, activation, space):
    model, tok = tiny_bert(labels, problem)
    engine = Engine(_source(model, tok), method, None, {"max_evals": 64, "seed": 0})
    assert engine.config.output_space == space
    out = engine.explain_records(engine.check(TEXTS))
    for text, rec in zip(TEXTS, out, strict=True):
        own = _own_output(model, tok, text, activation)
        assert len(rec["prediction"]) == labels
        assert np.abs(np.array(rec["prediction"]) - own).max() < 1e-5
        values = np.array(rec["values"])
        sums = np.array(rec["base_values"]) + values.sum(axis=1)
        tol = 1e-6 if method == "text" else 0.05  # IG: Captum's convergence delta, reported
        gap = np.abs(sums - np.array(rec["prediction"])).max()
        assert gap <= rec["additivity_error"] + 1e-12
        assert rec["additivity_error"] < tol
        complementary = problem in (None, "single_label_classification") and labels == 2
        # class 0 mirrors class 1 only for a 2-label softmax; independent outputs otherwise
        if labels > 1:
            assert np.allclose(values[0], -values[1]) == complementary


def test_multi_label_outputs_do_not_sum_to_one():
    model, tok = tiny_bert(3, "multi_label_classification", seed=3)
    engine = Engine(_source(model, tok), "text", None, {"max_evals": 64, "seed": 0})
    rec = engine.explain_records(engine.check(TEXTS[:1]))[0]
    assert abs(sum(rec["prediction"]) - 1.0) > 1e-3  # a softmax would make it exactly 1


def test_a_one_output_regressor_is_not_a_constant():
    model, tok = tiny_bert(1, "regression", seed=1)
    engine = Engine(_source(model, tok), "text", None, {"max_evals": 64, "seed": 0})
    recs = engine.explain_records(engine.check(TEXTS))
    assert recs[0]["prediction"] != recs[1]["prediction"]
    assert any(abs(v) > 1e-6 for v in recs[0]["values"][0])  # softmax would zero every value


def test_a_head_eaas_cannot_read_is_refused_at_build():
    model, tok = tiny_bert(2, "single_label_classification")
    source = _source(model, tok)
    model.config.problem_type = "ordinal_regression"
    with pytest.raises(UnsupportedModel, match="problem_type 'ordinal_regression'"):
        Engine(source, "text", None, {"max_evals": 64, "seed": 0})


def test_a_registered_multi_label_model_through_the_pyfunc(registry):
    """Logged the usual way (mlflow.transformers), built with `build_explainer`, loaded back by
    MLflow: the explainer's prediction is the model's sigmoid outputs."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.transformers
    import pandas as pd

    from eaas.explain.build import build_explainer
    from tests.fixtures import PIP

    model, tok = tiny_bert(3, "multi_label_classification", seed=5)
    with mlflow.start_run(run_name="tiny-bert-multilabel"):
        mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tok}, name="model",
            task="text-classification", registered_model_name="tiny-bert-multilabel",
            input_example=TEXTS, pip_requirements=PIP,
        )
    res = build_explainer("models:/tiny-bert-multilabel/1", max_evals=32)
    assert res.output_space == "probability"
    out = mlflow.pyfunc.load_model(res.uri).predict(pd.DataFrame({"text": TEXTS}))
    for text, pred in zip(TEXTS, out["prediction"], strict=True):
        own = _own_output(model, tok, text, torch.sigmoid)
        assert np.abs(np.array(pred) - own).max() < 1e-5
    assert out["additivity_error"].max() < 1e-6
