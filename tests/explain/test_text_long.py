"""Long texts on a tiny BERT with 64 positions: the model's own limit, truncate vs window,
the token-id fast path, the time budget, IG through transformers-interpret, and the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eaas.explain.errors import BadRequest, Stopped
from eaas.explain.source import SourceModel
from eaas.explain.text.forward import resolve_device
from eaas.explain.text.ig import IntegratedGradientsMethod
from eaas.explain.text.partition import TextPartitionMethod
from eaas.explain.text.windows import make_layout, model_limit, word_spans
from eaas.explain.validation import Params
from tests import fixtures as fx

POSITIONS = 64  # the fixture's max_position_embeddings: 62 word tokens + [CLS] + [SEP]


@pytest.fixture(scope="module")
def tiny(models):
    """The session's tiny BERT (trained once for the whole suite), as a source model."""
    return SourceModel(
        "transformers", models.bert, "text", ["text"], ["negative", "positive"], True,
        components={"tokenizer": models.tokenizer},
    )


def _text(n: int, seed: int = 1, tail: str = "") -> str:
    rng = np.random.default_rng(seed)
    words = list(rng.choice(fx.FILL, size=n))
    return " ".join(words) + tail


def _hf_probs(src: SourceModel, texts: list[str], **kw) -> np.ndarray:
    with torch.inference_mode():
        enc = src.components["tokenizer"](texts, padding=True, return_tensors="pt", **kw)
        return torch.softmax(src.model(**enc).logits, -1).numpy()


def test_the_limit_is_the_models_own(tiny):
    tok = fx.tiny_tokenizer()
    assert model_limit(tiny.model, tok) == POSITIONS  # position embeddings cap the tokenizer
    tok.model_max_length = 40
    assert model_limit(tiny.model, tok) == 40


def test_truncate_explains_exactly_what_the_model_sees(tiny):
    m = TextPartitionMethod(tiny)
    budget = POSITIONS - 2
    texts = [_text(budget), _text(budget + 1), _text(100, tail=" great great")]
    out = m.explain(texts, Params(300, 0, "truncate")).to_records()
    assert [r["truncated"] for r in out] == [False, True, True]  # exactly when words were cut
    seen = _hf_probs(tiny, texts, truncation=True, max_length=POSITIONS)
    for text, r, p in zip(texts, out, seen, strict=True):
        words = [text[a:b] for a, b in word_spans(text)]
        assert r["features"] == words[:budget]  # only the words the model saw
        assert np.abs(np.array(r["prediction"]) - p).max() < 1e-6  # the model's own prediction
        assert r["additivity_error"] < 1e-6


def test_window_attributes_every_word_and_adds_up_to_the_windows_mean(tiny):
    m = TextPartitionMethod(tiny)
    text = _text(100, tail=" great")  # the polar word lies beyond the model's 62 words
    r = m.explain([text], Params(400, 0, "window")).to_records()[0]
    lay = make_layout(text, tiny.components["tokenizer"], POSITIONS - 2, "window")
    assert len(lay.windows) > 1 and r["truncated"] is False
    assert r["features"] == [text[a:b] for a, b in word_spans(text)]  # every word
    windows = [lay.window_text(w)[1] for w in lay.windows]
    mean = _hf_probs(tiny, windows).mean(axis=0)  # the explained output, computed independently
    assert np.abs(np.array(r["prediction"]) - mean).max() < 1e-6
    assert r["additivity_error"] < 1e-6
    values = np.array(r["values"])
    # "great", past the model's 62 words, is attributed and among the top 10% toward positive
    assert values[1][-1] > 0.05 and (values[1] < values[1][-1]).mean() > 0.9
    assert np.allclose(values[0], -values[1], atol=1e-12)


def test_masked_ids_are_what_the_tokenizer_makes_of_the_masked_string(tiny):
    m = TextPartitionMethod(tiny)
    tok = tiny.components["tokenizer"]
    text = "the acting , really great ! a boring plot xyzzy ."
    lay = make_layout(text, tok, m.fn.budget, "truncate")
    rng = np.random.default_rng(0)
    for collapse in (False, True):  # one mask token per masked word, or per run of them
        m.fn.collapse = collapse
        for keep in rng.random((20, len(lay.spans))) < 0.5:
            words = [w if k else "[MASK]" for w, k in zip(lay.words, keep, strict=True)]
            if collapse:
                words = [w for i, w in enumerate(words) if w != "[MASK]" or keep[i - 1] or i == 0]
            assert m.fn.sequence(lay, lay.windows[0], keep) == tok(" ".join(words))["input_ids"]


@pytest.mark.parametrize("method", ["text", "integrated-gradients"])
def test_the_budget_stops_within_one_forward_batch(tiny, method):
    cls = TextPartitionMethod if method == "text" else IntegratedGradientsMethod
    m = cls(tiny)
    m.fn.batch_size = 8  # small forward batches, so a full explanation takes many of them
    text = _text(40, tail=" great")
    m.explain([text], Params(64, 0, "truncate"))
    full = m.fn.calls
    for flip in (1, full // 2):
        m.fn.calls = 0
        with pytest.raises(Stopped):
            m.explain([text], Params(64, 0, "truncate"), stop=lambda f=flip: m.fn.calls >= f)
        assert m.fn.calls == flip  # not one forward batch more after stop() turned true
    assert full > 4


def _captum_word_values(src: SourceModel, text: str, steps: int) -> np.ndarray:
    """The former Captum path: LayerIntegratedGradients on the embeddings, per class."""
    from captum.attr import LayerIntegratedGradients

    model, tok = src.model, src.components["tokenizer"]

    def forward(ids, mask):
        return torch.softmax(model(input_ids=ids, attention_mask=mask).logits, dim=-1)

    enc = tok([text], return_tensors="pt", return_offsets_mapping=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor(
        tok.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    ).bool()
    baseline = torch.where(special, ids[0], torch.full_like(ids[0], tok.pad_token_id))[None]
    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    spans = word_spans(text)
    out = np.zeros((2, len(spans)))
    for c in range(2):
        attr = lig.attribute(ids, baselines=baseline, additional_forward_args=(mask,),
                             target=c, n_steps=steps).sum(-1)[0].detach().numpy()
        for j, (a, _b) in enumerate(enc["offset_mapping"][0].tolist()):
            if not special[j]:
                out[c, next(i for i, (s, e) in enumerate(spans) if s <= a < e)] += attr[j]
    return out


def test_ig_through_transformers_interpret_equals_the_captum_path(tiny):
    m = IntegratedGradientsMethod(tiny)
    texts = ["the acting was really great", "a boring , dull plot !"]
    out = m.explain(texts, Params(32, 0, "truncate")).to_records()
    calls = m.fn.calls
    for text, r in zip(texts, out, strict=True):
        ref = _captum_word_values(tiny, text, 32)
        assert np.abs(np.array(r["values"]) - ref).max() < 1e-6
    m.fn.calls = 0
    m.explain(texts[:1], Params(32, 0, "truncate"))
    assert m.fn.calls * 2 <= calls  # one class computed, not two (class 0 is its negation)
    long = m.explain([_text(100, tail=" great")], Params(16, 0, "truncate")).to_records()[0]
    assert long["truncated"] is True and len(long["features"]) == POSITIONS - 2
    win = m.explain([_text(100, tail=" great")], Params(16, 0, "window")).to_records()[0]
    assert win["truncated"] is False and len(win["features"]) == 101


def test_device_auto_is_cpu_here_and_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(BadRequest, match="EAAS_DEVICE.*no CUDA device"):
        resolve_device("cuda")
