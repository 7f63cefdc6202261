"""`parlour apps update` changes a running server's app at once (no restart)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from parlour.cli import cli
from tests.conftest import Server

DATA = Path(__file__).resolve().parents[1] / "data"


async def test_update_applies_to_a_running_server(server: Server, tmp_path: Path) -> None:
    before = (await server.client.get("/v1/parameters", headers=server.auth())).json()
    assert before["opening_statement"] == ""
    env = {
        "PARLOUR_DATABASE_URL": server.database.url,
        "PARLOUR_DATABASE_SCHEMA": server.database.schema,
        "PARLOUR_DATA_DIR": str(tmp_path),
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["apps", "update", server.app_id, str(DATA / "parlour_app.yml")],
        env=env,
    )
    assert result.exit_code == 0, result.output
    after = (await server.client.get("/v1/parameters", headers=server.auth())).json()
    assert after["opening_statement"] == "Welcome!"
    info = (await server.client.get("/v1/info", headers=server.auth())).json()
    assert info["name"] == "Concierge" and info["tags"] == ["hotel"]
    site = (await server.client.get("/v1/site", headers=server.auth())).json()
    assert site["title"] == "Concierge desk"
    body = (await server.chat("hi", auto_generate_name=False)).json()
    assert server.fake.calls[-1][0].content == "Guest city is Lisbon."
    r = await server.client.get(f"/v1/conversations/{body['conversation_id']}/variables",
                                params={"user": "alice"}, headers=server.auth())
    assert [(v["name"], v["value"]) for v in r.json()["data"]] == [("city", "Lisbon"),
                                                                    ("visits", 0)]
