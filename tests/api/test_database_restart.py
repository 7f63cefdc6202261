"""PostgreSQL restarted under a running server: requests in the gap get a quick JSON 503, an
answer in flight still ends with a terminal event and its outcome is saved once the database
is back, and the server recovers by itself within 5 s of PostgreSQL accepting connections.

The restart is of a private cluster (initdb into a temporary directory), so the shared
PostgreSQL that other tests use is never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text

from parlour.providers.fake import FakeChatModel
from parlour.storage.migrate import upgrade
from tests.conftest import Database, free_port, run_server


async def read_events(response: httpx.Response) -> AsyncIterator[dict]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield orjson.loads(line[6:])


PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))


class PrivatePostgres:
    def __init__(self, bindir: Path, data: Path, port: int):
        self.bindir, self.data, self.port = bindir, data, port
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.data.parent / "server.log")  # not our pipes: the server outlives pg_ctl
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", opts, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    if not PG_BINS:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql")
    bindir = PG_BINS[-1].parent
    root = Path(tempfile.mkdtemp(prefix="parlour-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    pg = PrivatePostgres(bindir, data, free_port())
    pg._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


async def test_postgres_restart_gives_503_then_recovers(tmp_path: Path) -> None:
    model = FakeChatModel(name="fake:echo", delay=0.05)
    with private_postgres() as pg:
        db = Database(pg.url)
        engine = db.engine()
        await upgrade(engine)
        await engine.dispose()
        async with run_server(db, tmp_path, model) as srv:
            assert (await srv.chat("warm up")).status_code == 200

            # an answer in flight (about 1.5 s long) when the database goes away
            words = " ".join(f"w{i}" for i in range(30))
            body = {"query": words, "user": "alice", "response_mode": "streaming"}
            async with srv.client.stream(
                "POST", "/v1/chat-messages", json=body, headers=srv.auth()
            ) as stream:
                events = read_events(stream)
                first = await anext(events)
                message_id = first["message_id"]
                await asyncio.to_thread(pg.stop)

                # requests in the gap: a JSON 503, quickly
                for path in ("chat", "conversations"):
                    t0 = time.monotonic()
                    if path == "chat":
                        r = await srv.chat("while down")
                    else:
                        r = await srv.client.get(
                            "/v1/conversations", params={"user": "alice"}, headers=srv.auth()
                        )
                    took = time.monotonic() - t0
                    assert r.status_code == 503, (path, r.status_code, r.text)
                    assert r.json() == {
                        "code": "service_unavailable",
                        "message": "The database is unavailable. Please try again shortly.",
                        "status": 503,
                    }
                    assert took < 2.0, (path, took)
                health = await srv.client.get("/health")
                assert health.status_code == 503

                # the stream in flight still ends with one terminal event
                rest = [e async for e in events]
                assert rest[-1]["event"] in ("message_end", "error"), rest[-1]

            await asyncio.to_thread(pg.start)
            back = time.monotonic()
            while True:
                r = await srv.chat("after the restart")
                if r.status_code == 200:
                    break
                assert r.status_code == 503, r.text
                assert time.monotonic() - back < 5.0, "no recovery within 5 s"
                await asyncio.sleep(0.2)
            assert r.json()["answer"] == "echo: after the restart"
            recovered = time.monotonic() - back
            assert recovered < 5.0

            # the answer that was in flight is saved once the database is back
            engine = db.engine()
            try:
                deadline = time.monotonic() + 10
                while True:
                    async with engine.connect() as conn:
                        status = (
                            await conn.execute(
                                text("SELECT status FROM messages WHERE id = :id"),
                                {"id": message_id},
                            )
                        ).scalar_one()
                    if status != "running" or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
            finally:
                await engine.dispose()
            assert status in ("normal", "error"), status
