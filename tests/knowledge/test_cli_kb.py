"""``parlour kb``: create, add a folder (twice: the second run does no work), search, rm."""

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


def run(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_kb_round_trip(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "hours.md").write_text("# Opening hours\n\nWe are open from 9 to 17 on weekdays.")
    (docs / "sub" / "refunds.txt").write_text("Refunds reach your card within five days.")
    (docs / "ignored.bin").write_bytes(b"\x00")
    created = run("kb", "create", "help", "--json")[0]
    assert created["name"] == "help"
    added = run("kb", "add", "help", str(docs), "--json")
    assert [(a["name"], a["result"]) for a in added] == [
        ("hours.md", "added"), ("sub/refunds.txt", "added")]
    again = run("kb", "add", "help", str(docs), "--json")
    assert {a["result"] for a in again} == {"unchanged"} and {a["embedded"] for a in again} == {0}
    hits = run("kb", "search", "help", "when do I get my money back", "--json")
    assert hits[0]["document"] == "sub/refunds.txt" and float(hits[0]["score"]) > 0.3  # type: ignore[arg-type]
    hits = run("kb", "search", "help", "weekday opening", "--mode", "full_text", "--json")
    assert hits[0]["document"] == "hours.md"
    assert [k["document_count"] for k in run("kb", "list", "--json")] == [2]
    assert len(run("kb", "docs", "help", "--json")) == 2
    run("kb", "rm", "help", "--json")
    assert run("kb", "list", "--json") == []
    result = runner.invoke(cli, ["kb", "search", "help", "x"])
    assert result.exit_code == 1 and "not found" in result.output
