"""Fixtures: an isolated home, a CLI runner, and an initialised register per test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from pipolicy_cli.cli.app import app

# `pytest --hypothesis-profile thorough`: ten times the examples of every property (a few minutes).
settings.register_profile("thorough", max_examples=1000)

_ENV = ("PIPOLICY_DB", "PIPOLICY_CONFIG", "PIPOLICY_TZ", "PIPOLICY_KEY", "PIPOLICY_AUDIT_KEY", "PIPOLICY_DEBUG", "NO_COLOR")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pipolicy", "pipolicy's long runs (see the README's Development section)")
    group.addoption("--crash-kills", type=int, default=5, metavar="N",
                    help="SIGKILLs in the crash harness, spread over its five commands (default 5; the full run: 100).")
    group.addoption("--crash-users", type=int, default=2000, metavar="N",
                    help="People in the crash harness's register (ten access events each; default 2000).")
    group.addoption("--crash-seed", type=int, default=None, metavar="SEED",
                    help="Seed of the crash harness's random moments (default: a new one, printed on failure).")
    group.addoption("--soak-seconds", type=float, default=8.0, metavar="S",
                    help="How long the concurrency soak runs (default 8).")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data and config directories and a clean environment."""
    home = tmp_path / "home"
    monkeypatch.setenv("PIPOLICY_HOME", str(home))
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    return home


class Cli:
    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None):
        return self.runner.invoke(app, [str(arg) for arg in args], input=input, env=env)

    def json(self, *args: str, input: str | None = None, expect: int = 0):
        result = self(*args, "--format", "json", input=input)
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def db(tmp_path: Path, cli: Cli) -> Path:
    path = tmp_path / "register.db"
    result = cli("init", "--db", path)
    assert result.exit_code == 0, result.stderr
    return path


import sys as _sys

_sys.path.insert(0, str(Path(__file__).parent))  # tests_support and synthetic
