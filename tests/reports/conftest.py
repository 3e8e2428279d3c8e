"""Explanation Parquet and the reports built from it, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.helpers import tabular_explanations, text_explanations


@pytest.fixture(scope="session")
def tab_parquet(built, tmp_path_factory) -> Path:
    return tabular_explanations(built["tiny-xgb"], tmp_path_factory.mktemp("tab") / "out")


@pytest.fixture(scope="session")
def text_parquet(built, tmp_path_factory) -> Path:
    return text_explanations(built["tiny-bert"], tmp_path_factory.mktemp("text") / "out.parquet")


@pytest.fixture(scope="session")
def tab_report(tab_parquet, tmp_path_factory):
    from eaas.reports import build_report

    out = tmp_path_factory.mktemp("r-tab")
    return build_report(model="tiny-xgb/1", explanations=tab_parquet, output=out)


@pytest.fixture(scope="session")
def text_report(text_parquet, tmp_path_factory):
    from eaas.reports import build_report

    out = tmp_path_factory.mktemp("r-text")
    return build_report(model="tiny-bert@champion", explanations=text_parquet, output=out)


@pytest.fixture(scope="session")
def compare_report(built, tmp_path_factory):
    """A challenger version of tiny-xgb (other training data) reviewed against version 1."""
    import mlflow.xgboost

    from eaas.explain.build import build_explainer
    from eaas.reports import build_report
    from tests import fixtures as fx

    x, y = fx.tabular_data(seed=7)
    version = fx.register("tiny-xgb", mlflow.xgboost.log_model, fx.train_xgboost(x, y), x.head(30))
    uri = build_explainer(f"models:/tiny-xgb/{version}").uri
    out = tmp_path_factory.mktemp("r-compare")
    # the challenger's own explanations of the same rows as `tab_parquet` (version 1's)
    parquet = tabular_explanations(uri, out / "explanations")
    res = build_report(
        model=f"tiny-xgb/{version}", explanations=parquet, compare="tiny-xgb/1", output=out / "r"
    )
    return res, version
