"""``parlour kb``: create, add a folder (twice: the second run does no work), search, rm."""

from __future__ import annotations

from pathlib import Path

import pytest

from parlour.cli import cli
from tests.conftest import cli_json, cli_runner

pytestmark = pytest.mark.usefixtures("cli_data_dir")


def test_kb_round_trip(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "hours.md").write_text("# Opening hours\n\nWe are open from 9 to 17 on weekdays.")
    (docs / "sub" / "refunds.txt").write_text("Refunds reach your card within five days.")
    (docs / "ignored.bin").write_bytes(b"\x00")
    created = cli_json("kb", "create", "help", "--json")[0]
    assert created["name"] == "help"
    added = cli_json("kb", "add", "help", str(docs), "--json")
    assert [(a["name"], a["result"]) for a in added] == [
        ("hours.md", "added"),
        ("sub/refunds.txt", "added"),
    ]
    again = cli_json("kb", "add", "help", str(docs), "--json")
    assert {a["result"] for a in again} == {"unchanged"} and {a["embedded"] for a in again} == {0}
    hits = cli_json("kb", "search", "help", "when do I get my money back", "--json")
    assert hits[0]["document"] == "sub/refunds.txt" and float(hits[0]["score"]) > 0.3  # type: ignore[arg-type]
    hits = cli_json("kb", "search", "help", "weekday opening", "--mode", "full_text", "--json")
    assert hits[0]["document"] == "hours.md"
    assert [k["document_count"] for k in cli_json("kb", "list", "--json")] == [2]
    assert len(cli_json("kb", "docs", "help", "--json")) == 2
    cli_json("kb", "rm", "help", "--json")
    assert cli_json("kb", "list", "--json") == []
    result = cli_runner.invoke(cli, ["kb", "search", "help", "x"])
    assert result.exit_code == 1 and "not found" in result.output
