"""The operator CLI: apps and keys, as a script would use them (``--json``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parlour.cli import cli

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARLOUR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PARLOUR_DATABASE_URL", "")
    return tmp_path


def run(*args: str) -> object:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_apps_and_keys_round_trip() -> None:
    app = run("apps", "create", "support", "--model", "openai:gpt-4o-mini",
              "--prompt", "Be kind.", "--json")
    assert isinstance(app, list) and app[0]["name"] == "support"
    assert app[0]["model"] == "openai:gpt-4o-mini"
    listed = run("apps", "list", "--json")
    assert [a["name"] for a in listed] == ["support"]  # type: ignore[union-attr]
    key = run("keys", "create", "support", "--json")[0]  # type: ignore[index]
    assert key["key"].startswith("app-") and len(key["key"]) == 28
    assert key["key"][4:].isalnum()
    keys = run("keys", "list", app[0]["id"], "--json")
    assert keys[0]["hint"].startswith("app-") and "key" not in keys[0]  # type: ignore[index]
    revoked = run("keys", "revoke", key["id"], "--json")[0]  # type: ignore[index]
    assert revoked["revoked"] is True


def test_bad_model_spec_and_unknown_app_are_clear_errors() -> None:
    result = runner.invoke(cli, ["apps", "create", "x", "--model", "gpt4"])
    assert result.exit_code == 1 and "PROVIDER:MODEL" in result.output
    result = runner.invoke(cli, ["keys", "create", "nope"])
    assert result.exit_code == 1 and "App not found" in result.output


def test_migrate_is_idempotent(data_dir: Path) -> None:
    for _ in range(2):
        result = runner.invoke(cli, ["migrate"])
        assert result.exit_code == 0, result.output
    assert (data_dir / "parlour.db").exists()


def test_key_format_is_dify_like() -> None:
    run("apps", "create", "a", "--model", "fake:echo", "--json")
    tokens = {run("keys", "create", "a", "--json")[0]["key"] for _ in range(3)}  # type: ignore[index]
    assert len(tokens) == 3
