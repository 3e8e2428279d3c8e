"""Bounded memory (the service's own LRU of explainers, alias targets pinned, superseded ones
released) and scoped trust (the pickle permission exists only around one sklearn load)."""

from __future__ import annotations

import os

import pytest

from tests.api.conftest import live_server, metric

ROW = {"f0": 0.5, "f1": -1.2, "f2": 0.3, "f3": 1.1, "f4": -0.4}
VERSIONS = 20
BOUND = 3


@pytest.fixture(scope="module")
def history(built) -> str:
    """`hist-xgb` with 20 versions, each with its own explainer version (registered copies of
    one build: distinct registry versions, so distinct engines, in seconds)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    name = "hist-xgb"
    src = client.get_model_version("tiny-xgb", "1")
    exp = client.get_model_version("tiny-xgb-explainer", "1")
    for n in (name, f"{name}-explainer"):
        client.create_registered_model(n)
    for _ in range(VERSIONS):
        s = client.create_model_version(name, src.source, src.run_id)
        e = client.create_model_version(f"{name}-explainer", exp.source, exp.run_id)
        tags = {"eaas.source_model": name, "eaas.source_version": s.version,
                "eaas.method": "tree", "eaas.output_space": "log_odds"}
        for k, v in tags.items():
            client.set_model_version_tag(e.name, e.version, k, v)
        uri = f"models:/{e.name}/{e.version}"
        client.set_model_version_tag(name, s.version, "eaas.explainer", uri)
    client.set_registered_model_alias(name, "champion", "1")
    return name


def test_twenty_versions_never_hold_more_than_the_bound(history):
    with live_server(models=[f"{history}@champion"], max_loaded_explainers=BOUND) as api:
        seen = []
        for v in range(1, VERSIONS + 1):
            res = api.post(f"/v1/models/{history}/{v}:explain", json={"instances": [ROW]})
            assert res.status_code == 200 and res.json()["model"]["version"] == str(v)
            seen.append(metric(api, "eaas_loaded_explainers"))
            champion = api.post(f"/v1/models/{history}:explain", json={"instances": [ROW]})
            assert champion.json()["model"]["version"] == "1"  # the alias target stays
        assert max(seen) <= BOUND and seen[-1] == BOUND, seen


def test_a_moved_alias_releases_its_old_target(history):
    from mlflow.tracking import MlflowClient

    from eaas.api.repository import ModelRepository

    repo = ModelRepository([f"{history}@champion"], max_loaded=BOUND)
    repo.load_all()
    assert repo.ready and list(repo.engines) == [f"models:/{history}-explainer/1"]
    repo.get(f"{history}/5")  # a fixed version: an LRU entry
    client = MlflowClient()
    try:
        client.set_registered_model_alias(history, "champion", "2")
        repo.refresh()
        assert set(repo.engines) == {f"models:/{history}-explainer/{v}" for v in (2, 5)}
        for v in range(6, 12):
            repo.get(f"{history}/{v}")
            assert len(repo.engines) <= BOUND
        assert f"models:/{history}-explainer/2" in repo.engines  # pinned by the alias
        assert repo.lookup(history).model["version"] == "2"
    finally:
        client.set_registered_model_alias(history, "champion", "1")


@pytest.mark.parametrize("before", [None, "false"])
def test_the_pickle_permission_is_scoped_to_one_load(built, before, tmp_path):
    import mlflow

    from eaas.explain.source import PICKLE_FLAG, load_source

    path = mlflow.artifacts.download_artifacts("models:/tiny-mlp/1", dst_path=str(tmp_path))
    old = os.environ.pop(PICKLE_FLAG, None)
    try:
        if before is not None:
            os.environ[PICKLE_FLAG] = before
        source = load_source(path)
        assert source.flavor == "sklearn" and source.type_name == "MLPClassifier"
        assert os.environ.get(PICKLE_FLAG) == before
    finally:
        os.environ.pop(PICKLE_FLAG, None)
        if old is not None:
            os.environ[PICKLE_FLAG] = old
