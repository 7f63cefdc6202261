"""``parlour kb keys``: keys of the Knowledge API, stored hashed, for every base or one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parlour.cli import cli
from parlour.services.apps import hash_key

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARLOUR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PARLOUR_DATABASE_URL", "")
    return tmp_path


def run(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_kb_keys_create_list_revoke(tmp_path: Path) -> None:
    kb = run("kb", "create", "help", "--json")[0]
    every = run("kb", "keys", "create", "--json")[0]
    one = run("kb", "keys", "create", "help", "--json")[0]
    assert str(every["key"]).startswith("dataset-") and every["knowledge_base"] == "*"
    assert one["knowledge_base"] == kb["id"]
    listed = run("kb", "keys", "list", "--json")
    assert [k["id"] for k in listed] == [every["id"], one["id"]]
    assert all("key" not in k and not k["revoked"] for k in listed)
    assert [k["id"] for k in run("kb", "keys", "list", "help", "--json")] == [one["id"]]
    with sqlite3.connect(tmp_path / "parlour.db") as db:
        stored = [r[0] for r in db.execute("SELECT key_hash FROM dataset_keys")]
    assert sorted(stored) == sorted(hash_key(str(k["key"])) for k in (every, one))
    assert run("kb", "keys", "revoke", str(one["id"]), "--json")[0]["revoked"] is True
    result = runner.invoke(cli, ["kb", "keys", "revoke", "nope"])
    assert result.exit_code == 1 and "not found" in result.output
    result = runner.invoke(cli, ["kb", "keys", "create", "missing-kb"])
    assert result.exit_code == 1 and "not found" in result.output
    result = runner.invoke(cli, ["kb", "keys", "list"])
    assert result.exit_code == 0 and "dataset-" in result.output
