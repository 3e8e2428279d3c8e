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


@pytest.mark.parametrize(("args", "env", "message"), [
    (["serve", "--replicas", "2"], {},
     "ValueError: --address, --replicas and --autoscale need --ray"),
    (["serve", "--ray", "--replicas", "2", "--autoscale", "1:2"], {},
     "ValueError: --replicas and --autoscale: choose one"),
    (["serve", "--ray", "--autoscale", "3:1"], {},
     "ValueError: EAAS_RAY_AUTOSCALE: expected MIN:MAX replicas with MIN <= MAX, e.g. 1:4"),
    (["serve"], {"EAAS_JOB_THREADS": "5"},
     "ValueError: settings: EAAS_JOB_THREADS (5) must be below EAAS_EXECUTOR_THREADS (2): "
     "synchronous requests keep at least one thread"),
    (["serve", "--ray"], {"EAAS_RAY_REPLICA_RESOURCES": "{not json"},
     'SettingsError: error parsing value for field "ray_replica_resources" from source '
     '"EnvSettingsSource"'),
])  # fmt: skip
def test_bad_serve_settings_are_one_line_naming_the_setting(args, env, message, monkeypatch):
    """Refused before anything starts (no server, no Ray cluster): exit 2, one line."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [f"error: {message}"]


def test_serve_ray_without_the_extra_says_how_to_install_it(monkeypatch):
    import sys

    for name in ("ray", "ray.serve"):
        monkeypatch.setitem(sys.modules, name, None)  # as if `eaas[ray]` were not installed
    res = CliRunner().invoke(app, ["serve", "--ray"])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "error: ImportError: --ray needs Ray Serve: pip install 'eaas[ray]'"]  # fmt: skip
