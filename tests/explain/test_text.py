"""Text explainers on a tiny BERT: every class with its real score, tokens from the input."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

TEXTS = ["the acting was really great", "a boring , dull plot !"]


def _softmax(models, texts):
    with torch.inference_mode():
        enc = models.tokenizer(texts, padding=True, return_tensors="pt")
        return torch.softmax(models.bert(**enc).logits, -1).numpy()


def _in_order(tokens: list[str], text: str) -> bool:
    pos = 0
    for t in tokens:
        pos = text.find(t, pos)
        if pos < 0:
            return False
        pos += len(t)
    return True


def test_text_partition_explains_every_class_with_its_score(models, built):
    m = mlflow.pyfunc.load_model(built["tiny-bert"])
    out = m.predict(pd.DataFrame({"text": TEXTS}))
    probs = _softmax(models, TEXTS)
    for i, text in enumerate(TEXTS):
        row = out.iloc[i]
        assert row["output_names"] == ["negative", "positive"]
        assert np.abs(np.array(row["prediction"]) - probs[i]).max() < 1e-5
        values = np.array(row["values"])
        assert values.shape == (2, len(row["features"]))
        assert np.abs(values).sum(axis=1).min() > 1e-3  # no class explained as zeros
        assert np.allclose(values[0], -values[1], atol=1e-6)  # p0 = 1 - p1
        assert row["additivity_error"] < 1e-6
        assert row["features"] == row["data"] and _in_order(row["features"], text)
    great = out.iloc[0]
    assert great["features"][int(np.argmax(great["values"][1]))] == "great"
    dull = out.iloc[1]
    assert dull["features"][int(np.argmax(dull["values"][0]))] in {"boring", "dull"}


def test_text_empty_string_and_bad_input(models, built):
    from eaas.explain.errors import InvalidInput

    m = mlflow.pyfunc.load_model(built["tiny-bert"])
    out = m.predict(pd.DataFrame({"text": ["", "great"]}))
    assert out["features"][0] == [] and out["prediction"][0] == out["base_values"][0]
    assert out["features"][1] == ["great"]
    with pytest.raises(InvalidInput, match="text"):
        m.predict(pd.DataFrame({"review": ["great"]}))
    with pytest.raises(InvalidInput, match="not a string"):
        m.predict(pd.DataFrame({"text": [3]}))


def test_integrated_gradients_reports_its_own_error(models):
    from eaas.explain.build import build_explainer

    res = build_explainer(
        "models:/tiny-bert/1", method="integrated-gradients", max_evals=64, name="tiny-bert-ig"
    )
    out = mlflow.pyfunc.load_model(res.uri).predict(pd.DataFrame({"text": TEXTS}))
    probs = _softmax(models, TEXTS)
    for i, text in enumerate(TEXTS):
        row = out.iloc[i]
        values = np.array(row["values"])
        gap = np.abs(np.array(row["base_values"]) + values.sum(1) - np.array(row["prediction"]))
        assert row["additivity_error"] == pytest.approx(gap.max(), abs=1e-12)
        assert row["additivity_error"] < 0.05  # Captum's convergence delta at 64 steps
        assert np.abs(np.array(row["prediction"]) - probs[i]).max() < 1e-5
        assert _in_order(row["features"], text)
    assert out.iloc[0]["features"][int(np.argmax(out.iloc[0]["values"][1]))] == "great"
