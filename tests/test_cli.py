"""The command line's error contract: expected errors are one line (exit 2); an unexpected one is
one line too (exit 1) unless `--debug` asks for the traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from eaas.cli import app

pytestmark = pytest.mark.fast


@pytest.fixture()
def broken_build(monkeypatch):
    import eaas.explain.build as build

    def boom(*args, **kwargs):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr(build, "build_explainer", boom)


def test_an_unexpected_error_is_one_line_without_debug(broken_build):
    res = CliRunner().invoke(app, ["explainer", "build", "--model", "models:/m/1"])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert lines == ["error: unexpected RuntimeError: something inside broke "
                     "(eaas --debug ... shows the traceback)"]


def test_debug_lets_the_traceback_through(broken_build):
    res = CliRunner().invoke(app, ["--debug", "explainer", "build", "--model", "models:/m/1"])
    assert isinstance(res.exception, RuntimeError)  # CliRunner keeps what would be printed


def test_an_expected_error_stays_exit_2():
    res = CliRunner().invoke(app, ["explainer", "build", "--model", "runs:/abc/model"])
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error: ") and len(res.stderr.strip().splitlines()) == 1
