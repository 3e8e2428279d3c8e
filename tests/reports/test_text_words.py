"""Text report aggregation: case-folded words, a minimum count, stop-words kept but not ranked,
signed 'pushes toward' tables, one output for a 2-class model."""

from __future__ import annotations

import pandas as pd

from eaas.reports.aggregate import (
    WordOptions,
    push_labels,
    shown_outputs,
    token_effects,
    word_importance,
)


def _frame() -> pd.DataFrame:
    rows = [
        (["Great", "film", "."], [0.5, 0.1, 0.0]),
        (["great", "the", "plot", "."], [0.3, 0.05, -0.2, 0.01]),
        (["GREAT", "the", "plot", "!"], [0.4, 0.05, -0.4, 0.0]),
        (["dull", "plot", "the", "."], [-0.6, -0.3, 0.02, 0.0]),
    ]
    return pd.DataFrame({
        "features": [f for f, _ in rows],
        "values": [[[-v for v in vals], vals] for _, vals in rows],
        "output_names": [["negative", "positive"]] * len(rows),
    })


def test_words_are_case_folded_counted_and_stopwords_not_ranked():
    frame = _frame()
    imp = word_importance(frame, ["negative", "positive"], WordOptions())["positive"]
    assert list(imp.index) == ["great", "plot"]  # 'film', 'dull' < 3; 'the', '.' not ranked
    assert abs(imp["great"] - 0.4) < 1e-12 and abs(imp["plot"] - 0.3) < 1e-12
    every = word_importance(frame, ["negative", "positive"],
                            WordOptions(min_count=1, include_stopwords=True))["positive"]
    assert {"the", ".", "film", "dull", "!"} <= set(every.index)
    eff = token_effects(frame, 1)
    assert list(eff["positive"].index) == ["great"] and list(eff["negative"].index) == ["plot"]
    assert eff["positive"].loc["great", "count"] == 3


def test_two_class_text_shows_one_output_with_signed_labels():
    names = ["negative", "positive"]
    assert shown_outputs(names, True, WordOptions()) == ["positive"]
    assert shown_outputs(names, True, WordOptions(all_outputs=True)) == names
    assert shown_outputs(names, False, WordOptions()) == names
    assert shown_outputs(names, True, WordOptions(), mirrored=False) == names
    assert push_labels(names, "positive") == ("pushes toward positive", "pushes toward negative")
    assert push_labels(["a", "b", "c"], "b") == ("pushes toward b", "pushes away from b")


def test_only_exactly_mirrored_outputs_count_as_one():
    import pandas as pd

    from eaas.reports.aggregate import mirrored

    softmax = pd.DataFrame({"values": [[[-0.5, 0.25], [0.5, -0.25]], [[0.0], [-0.0]]]})
    sigmoid = pd.DataFrame({"values": [[[-0.5, 0.25], [0.5, -0.2]]]})
    assert mirrored(softmax) and not mirrored(sigmoid)
