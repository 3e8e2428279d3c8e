"""Library notices that tell the user nothing are dropped inside quiet_notices(), and only there."""

from __future__ import annotations

import logging
import warnings

import pytest

from eaas.explain.quiet import quiet_notices

pytestmark = pytest.mark.fast


def test_notices_are_dropped_inside_the_block_only(caplog):
    card = logging.getLogger("mlflow.transformers")
    load = logging.getLogger("transformers.modeling_utils")
    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_notices():
            card.warning("The model card could not be retrieved from the hub")
            load.warning("BertForSequenceClassification LOAD REPORT from: x")
            load.warning("some other loading problem")
            card.error("a real failure")
            warnings.warn("PySpark does not yet fully support pandas", FutureWarning, stacklevel=1)
        card.warning("outside the block")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["some other loading problem", "a real failure", "outside the block"]
    assert seen == []
