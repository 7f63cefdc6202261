"""``parlour kb keys``: keys of the Knowledge API, stored hashed, for every base or one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from parlour.cli import cli
from parlour.services.apps import hash_key
from tests.conftest import cli_json, cli_runner

pytestmark = pytest.mark.usefixtures("cli_data_dir")


def test_kb_keys_create_list_revoke(tmp_path: Path) -> None:
    kb = cli_json("kb", "create", "help", "--json")[0]
    every = cli_json("kb", "keys", "create", "--json")[0]
    one = cli_json("kb", "keys", "create", "help", "--json")[0]
    assert str(every["key"]).startswith("dataset-") and every["knowledge_base"] == "*"
    assert one["knowledge_base"] == kb["id"]
    listed = cli_json("kb", "keys", "list", "--json")
    assert [k["id"] for k in listed] == [every["id"], one["id"]]
    assert all("key" not in k and not k["revoked"] for k in listed)
    assert [k["id"] for k in cli_json("kb", "keys", "list", "help", "--json")] == [one["id"]]
    with sqlite3.connect(tmp_path / "parlour.db") as db:
        stored = [r[0] for r in db.execute("SELECT key_hash FROM dataset_keys")]
    assert sorted(stored) == sorted(hash_key(str(k["key"])) for k in (every, one))
    assert cli_json("kb", "keys", "revoke", str(one["id"]), "--json")[0]["revoked"] is True
    result = cli_runner.invoke(cli, ["kb", "keys", "revoke", "nope"])
    assert result.exit_code == 1 and "not found" in result.output
    result = cli_runner.invoke(cli, ["kb", "keys", "create", "missing-kb"])
    assert result.exit_code == 1 and "not found" in result.output
    result = cli_runner.invoke(cli, ["kb", "keys", "list"])
    assert result.exit_code == 0 and "dataset-" in result.output
