"""Two real worker processes (``parlour serve --workers 2``) on PostgreSQL + Redis: any worker
serves any request, a stop sent to either worker stops the task within a second, and a worker
killed with SIGKILL mid-stream leaves a message that is marked failed when a worker restarts,
while the other worker keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_URL, free_port
from tests.mock_llm import mock_llm
from tests.test_e2e import Process, start, stop

REDIS = "redis://127.0.0.1:6379/0"


def _sql(schema: str, statement: str) -> list[tuple[object, ...]]:
    async def go() -> list[tuple[object, ...]]:
        engine = create_async_engine(PG_URL)
        try:
            async with engine.begin() as conn:
                if schema:
                    await conn.execute(text(f"SET search_path TO {schema}"))
                result = await conn.execute(text(statement))
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    schema = "w_" + uuid.uuid4().hex[:10]
    _sql("", f"CREATE SCHEMA {schema}")
    with mock_llm(free_port(), tokens=400, delay_ms=25) as base:  # 10 s per full answer
        process = start(
            tmp_path,
            PARLOUR_DATABASE_URL=PG_URL,
            PARLOUR_DATABASE_SCHEMA=schema,
            PARLOUR_REDIS_URL=REDIS,
            PARLOUR_WORKERS="2",
            PARLOUR_DEFAULT_MODEL="openai:mock-gpt",
            PARLOUR_OPENAI_BASE_URL=base,
        )
        try:
            yield process, schema
        finally:
            stop(process)
            _sql("", f"DROP SCHEMA {schema} CASCADE")


def first_frame(
    client: httpx.Client, process: Process, query: str
) -> tuple[httpx.Response, Iterator[str], dict[str, object]]:
    response = client.send(
        client.build_request(
            "POST", process.base + "/v1/chat-messages",
            json={"query": query, "user": "w", "response_mode": "streaming",
                  "auto_generate_name": False},
            headers={"Authorization": f"Bearer {process.key}"},
        ),
        stream=True,
    )
    lines = response.iter_lines()
    for line in lines:
        if line.startswith("data: "):
            return response, lines, json.loads(line[6:])
    raise AssertionError("no frame")


@pytest.mark.timeout(120)
def test_stop_reaches_the_worker_running_the_task(workers: tuple[Process, str]) -> None:
    process, schema = workers
    for i in range(4):  # the stop lands on either worker
        with httpx.Client(timeout=30) as client:
            response, lines, frame = first_frame(client, process, f"story {i}")
            sent = time.monotonic()
            stop_and_check(process, response, lines, frame, sent)
    rows = _sql(schema, "SELECT DISTINCT worker FROM messages")
    assert len(rows) >= 1
    assert _sql(schema, "SELECT count(*) FROM messages WHERE status = 'stopped'") == [(4,)]


def stop_and_check(
    process: Process, response: httpx.Response, lines: Iterator[str],
    frame: dict[str, object], sent: float,
) -> None:
    r = httpx.post(
        f"{process.base}/v1/chat-messages/{frame['task_id']}/stop", json={"user": "w"},
        headers={"Authorization": f"Bearer {process.key}"},
    )
    assert r.json() == {"result": "success"}
    events = [json.loads(x[6:]) for x in lines if x.startswith("data: ")]
    response.close()
    assert events[-1]["event"] == "message_end"
    assert time.monotonic() - sent < 1.5


def kill_worker_of(schema: str, frame: dict[str, object], lines: Iterator[str]) -> None:
    """SIGKILL the worker process that runs the message of ``frame``."""
    rows = _sql(schema, f"SELECT worker FROM messages WHERE id = '{frame['message_id']}'")
    pid = int(str(rows[0][0]).rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(httpx.HTTPError):
        for _ in lines:
            pass


@pytest.mark.timeout(120)
def test_killed_worker_message_is_marked_failed(workers: tuple[Process, str]) -> None:
    process, schema = workers
    with httpx.Client(timeout=30) as client:
        response, lines, frame = first_frame(client, process, "doomed")
        kill_worker_of(schema, frame, lines)
        response.close()
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        status = _sql(schema, f"SELECT status FROM messages WHERE id = '{frame['message_id']}'")
        if status == [("error",)]:
            break
        time.sleep(0.5)
    assert status == [("error",)], "the restarted worker did not recover the message"
    r = httpx.post(
        process.base + "/v1/chat-messages",
        json={"query": "still there?", "user": "w", "response_mode": "blocking"},
        headers={"Authorization": f"Bearer {process.key}"}, timeout=60,
    )
    assert r.status_code == 200
    killed = _sql(schema, f"SELECT worker FROM messages WHERE id = '{frame['message_id']}'")
    counts = burst(process, schema, "after")  # the replacement listens and serves its share
    assert len(counts) == 2 and str(killed[0][0]) not in counts, (killed, counts)


def burst(process: Process, schema: str, tag: str) -> dict[str, int]:
    """24 streams at once, each on a connection of its own: their messages per worker."""

    async def first_event(i: int) -> None:
        async with httpx.AsyncClient(timeout=30) as client:  # a connection of its own
            async with client.stream(
                "POST", process.base + "/v1/chat-messages",
                json={"query": f"{tag} {i}", "user": "w", "auto_generate_name": False},
                headers={"Authorization": f"Bearer {process.key}"},
            ) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        return

    async def burst() -> None:
        await asyncio.gather(*(first_event(i) for i in range(24)))

    asyncio.run(burst())
    return {str(w): int(str(n)) for w, n in _sql(
        schema, f"SELECT worker, count(*) FROM messages WHERE query LIKE '{tag} %' GROUP BY 1"
    )}


@pytest.mark.timeout(120)
def test_a_burst_of_connections_reaches_both_workers(workers: tuple[Process, str]) -> None:
    """Each worker listens on a socket of its own: the kernel spreads new connections over
    them, where with one shared socket the first worker to wake could take a whole burst."""
    counts = sorted(burst(*workers, "burst").values())
    assert sum(counts) == 24
    assert len(counts) == 2 and counts[0] >= 4, counts


@pytest.mark.timeout(120)
def test_a_second_server_on_the_port_fails(workers: tuple[Process, str], tmp_path: Path) -> None:
    process, _ = workers
    env = {**os.environ, "PARLOUR_PORT": process.base.rsplit(":", 1)[1],
           "PARLOUR_DATA_DIR": str(tmp_path / "other"), "PARLOUR_DATABASE_URL": "",
           "PARLOUR_WORKERS": "2", "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "parlour.cli", "serve"], env=env, capture_output=True,
        text=True, timeout=90, stdin=subprocess.DEVNULL, check=False,
    )
    assert out.returncode != 0
    assert "Address already in use" in out.stdout + out.stderr



@pytest.mark.timeout(120)
def test_two_servers_started_at_once_do_not_share_the_port(tmp_path: Path) -> None:
    """Before either listens, both could bind with SO_REUSEPORT: the port's lock tells."""
    port = str(free_port())
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "parlour.cli", "serve"],
            env={**os.environ, "PARLOUR_PORT": port, "PARLOUR_DATA_DIR": str(tmp_path / name),
                 "PARLOUR_DATABASE_URL": "", "PARLOUR_WORKERS": "2", "NO_COLOR": "1"},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for name in ("one", "two")
    ]
    try:
        deadline = time.monotonic() + 60
        while all(s.poll() is None for s in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        failed = [s for s in servers if s.poll() is not None]
        assert len(failed) == 1 and failed[0].returncode != 0
        assert failed[0].stdout is not None
        assert "Address already in use" in failed[0].stdout.read()
        running = next(s for s in servers if s.poll() is None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the other one serves
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("the other server never answered")
        assert running.poll() is None
    finally:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                server.wait(30)
            if server.stdout is not None:
                server.stdout.close()
