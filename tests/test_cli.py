"""The operator CLI: apps and keys, as a script would use them (``--json``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parlour.cli import cli
from tests.conftest import cli_json, cli_runner

pytestmark = pytest.mark.usefixtures("cli_data_dir")


def test_apps_and_keys_round_trip() -> None:
    app = cli_json(
        "apps",
        "create",
        "support",
        "--model",
        "openai:gpt-4o-mini",
        "--prompt",
        "Be kind.",
        "--json",
    )
    assert isinstance(app, list) and app[0]["name"] == "support"
    assert app[0]["model"] == "openai:gpt-4o-mini"
    listed = cli_json("apps", "list", "--json")
    assert [a["name"] for a in listed] == ["support"]  # type: ignore[union-attr]
    key = cli_json("keys", "create", "support", "--json")[0]  # type: ignore[index]
    assert key["key"].startswith("app-") and len(key["key"]) == 28
    assert key["key"][4:].isalnum()
    keys = cli_json("keys", "list", app[0]["id"], "--json")
    assert keys[0]["hint"].startswith("app-") and "key" not in keys[0]  # type: ignore[index]
    revoked = cli_json("keys", "revoke", key["id"], "--json")[0]  # type: ignore[index]
    assert revoked["revoked"] is True


def test_bad_model_spec_and_unknown_app_are_clear_errors() -> None:
    result = cli_runner.invoke(cli, ["apps", "create", "x", "--model", "gpt4"])
    assert result.exit_code == 1 and "PROVIDER:MODEL" in result.output
    result = cli_runner.invoke(cli, ["keys", "create", "nope"])
    assert result.exit_code == 1 and "App not found" in result.output


def test_migrate_is_idempotent(cli_data_dir: Path) -> None:
    for _ in range(2):
        result = cli_runner.invoke(cli, ["migrate"])
        assert result.exit_code == 0, result.output
    assert (cli_data_dir / "parlour.db").exists()


def test_key_format_is_dify_like() -> None:
    cli_json("apps", "create", "a", "--model", "fake:echo", "--json")
    tokens = {cli_json("keys", "create", "a", "--json")[0]["key"] for _ in range(3)}  # type: ignore[index]
    assert len(tokens) == 3
