"""Helpers of the Knowledge API tests: a dataset key, a client for it, polling a batch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from parlour.services import dataset_keys
from parlour.storage.db import make_sessionmaker
from tests.conftest import Database, Server

STAGES = ("waiting", "parsing", "splitting", "indexing", "completed", "error")


async def new_dataset_key(database: Database, kb: str | None = None) -> str:
    engine = database.engine()
    try:
        async with make_sessionmaker(engine).begin() as session:
            return (await dataset_keys.create_key(session, kb))[1]
    finally:
        await engine.dispose()


@dataclass
class Api:
    server: Server
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.server.client.get("/v1" + path, params=params, headers=self.headers)

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        if body is not None:
            kw["json"] = body
        return await self.server.client.post("/v1" + path, headers=self.headers, **kw)

    async def delete(self, path: str) -> httpx.Response:
        return await self.server.client.delete("/v1" + path, headers=self.headers)

    async def dataset(self, name: str = "pets", **body: Any) -> str:
        r = await self.post("/datasets", {"name": name, **body})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    async def add_text(self, kb: str, name: str, text: str) -> dict[str, Any]:
        r = await self.post(
            f"/datasets/{kb}/document/create-by-text",
            {
                "name": name,
                "text": text,
                "indexing_technique": "high_quality",
                "process_rule": {"mode": "automatic"},
            },
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def status(self, kb: str, batch: str) -> dict[str, Any]:
        r = await self.get(f"/datasets/{kb}/documents/{batch}/indexing-status")
        assert r.status_code == 200, r.text
        return r.json()["data"][0]  # type: ignore[no-any-return]

    async def wait(
        self,
        kb: str,
        batch: str,
        until: tuple[str, ...] = ("completed", "error"),
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        seen: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                status = await self.status(kb, batch)
                assert status["indexing_status"] in STAGES, status
                if not seen or seen[-1] != status["indexing_status"]:
                    seen.append(status["indexing_status"])
                if status["indexing_status"] in until:
                    status["seen"] = seen
                    return status
                await asyncio.sleep(0.05)


def check_error(r: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message", "status"}, body
    assert body["code"] == code and body["status"] == status, body
    if message is not None:
        assert body["message"] == message, body
