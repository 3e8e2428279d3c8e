"""Tests here build extra explainers (kernel, partition, IG) from the shared fixture models; a
build re-points the source version's `eaas.explainer` tag, so it is restored after each test and
later packages (api, reports) serve the session's own explainers whatever the test order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

SHARED = ("tiny-xgb", "tiny-lgbm", "tiny-logistic", "tiny-mlp", "tiny-mlp-nobg", "tiny-bert")


@pytest.fixture(autouse=True)
def keep_explainer_tags(request) -> Iterator[None]:
    if "models" not in request.fixturenames and "built" not in request.fixturenames:
        yield
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    before = {n: client.get_model_version(n, "1").tags.get("eaas.explainer") for n in SHARED}
    yield
    for name, tag in before.items():
        now = client.get_model_version(name, "1").tags.get("eaas.explainer")
        if now == tag:
            continue
        if tag is None:
            client.delete_model_version_tag(name, "1", "eaas.explainer")
        else:
            client.set_model_version_tag(name, "1", "eaas.explainer", tag)
