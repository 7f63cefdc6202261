"""``parlour apps import | export | update`` as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from parlour.cli import cli
from tests.conftest import cli_runner

DATA = Path(__file__).resolve().parent / "data"


pytestmark = pytest.mark.usefixtures("cli_data_dir")


def test_import_export_update(tmp_path: Path) -> None:
    result = cli_runner.invoke(
        cli, ["apps", "import", str(DATA / "dify_chat_app.yml"), "--key", "--json"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert row["name"] == "Topic helper" and row["key"].startswith("app-")
    assert "presence_penalty" in " ".join(row["warnings"])
    result = cli_runner.invoke(cli, ["apps", "export", "Topic helper"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.output)
    assert doc["kind"] == "parlour-app" and doc["config"]["model"]["name"] == "gpt-4o-mini"
    doc["config"]["pre_prompt"] = "Changed."
    changed = tmp_path / "changed.yml"
    changed.write_text(yaml.safe_dump(doc, allow_unicode=True))
    result = cli_runner.invoke(cli, ["apps", "update", row["id"], str(changed), "--json"])
    assert result.exit_code == 0, result.output
    result = cli_runner.invoke(cli, ["apps", "export", row["id"], "--format", "dify"])
    dsl = yaml.safe_load(result.output)
    assert dsl["model_config"]["pre_prompt"] == "Changed." and dsl["kind"] == "app"


def test_warnings_are_printed_and_errors_are_clear(tmp_path: Path) -> None:
    result = cli_runner.invoke(cli, ["apps", "import", str(DATA / "dify_agent_app.yml")])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "agent tools are not run" in result.output
    bad = tmp_path / "bad.yml"
    bad.write_text("kind: app\napp: {name: x, mode: workflow}\n")
    result = cli_runner.invoke(cli, ["apps", "import", str(bad)])
    assert result.exit_code == 1 and "cannot be imported" in result.output
    result = cli_runner.invoke(cli, ["apps", "update", "nope", str(DATA / "parlour_app.yml")])
    assert result.exit_code == 1 and "App not found" in result.output
    result = cli_runner.invoke(cli, ["apps", "import", str(tmp_path / "missing.yml")])
    assert result.exit_code != 0
