"""The real server process (``parlour serve``) driven over HTTP: the published ``dify-client``
SDK, the first-start demo app, and the embedded model generating real tokens."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dify_client import ChatClient

from tests.conftest import free_port

KEY = re.compile(r"app-[A-Za-z0-9]{24}")


@dataclass
class Process:
    base: str
    key: str | None
    proc: subprocess.Popen[bytes]
    log: Path


def start(data_dir: Path, **env: str) -> Process:
    port = free_port()
    environ = {
        **os.environ,
        "PARLOUR_DATA_DIR": str(data_dir),
        "PARLOUR_PORT": str(port),
        "PARLOUR_DATABASE_URL": "",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        **env,
    }
    log = data_dir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parlour.cli", "serve"],
            env=environ, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/v1/", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("parlour serve did not start:\n" + log.read_text())
        time.sleep(0.1)
    found = KEY.search(log.read_text())
    return Process(base, found.group(0) if found else None, proc, log)


def stop(process: Process) -> None:
    process.proc.terminate()
    process.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    process = start(tmp_path_factory.mktemp("e2e"), PARLOUR_DEFAULT_MODEL="fake:echo")
    yield process
    stop(process)


def sdk(process: Process) -> ChatClient:
    assert process.key, "the demo key was not printed on first start"
    client = ChatClient(process.key)
    client.base_url = process.base + "/v1"
    return client


def test_sdk_blocking(fake_server: Process) -> None:
    r = sdk(fake_server).create_chat_message(inputs={}, query="hello sdk", user="sdk-user")
    assert r.status_code == 200
    body = r.json()
    assert body["answer"] == "echo: hello sdk" and body["conversation_id"]
    again = sdk(fake_server).create_chat_message(
        inputs={}, query="and again", user="sdk-user", conversation_id=body["conversation_id"]
    )
    assert again.json()["conversation_id"] == body["conversation_id"]


def test_sdk_streaming(fake_server: Process) -> None:
    r = sdk(fake_server).create_chat_message(
        inputs={}, query="stream me", user="sdk-user", response_mode="streaming"
    )
    assert r.status_code == 200
    events = [
        json.loads(line[len("data: ") :])
        for line in r.iter_lines(decode_unicode=True)
        if line and line.startswith("data: ")
    ]
    assert "".join(e["answer"] for e in events if e["event"] == "message") == "echo: stream me"
    assert events[-1]["event"] == "message_end"


def test_sdk_sees_errors_as_json(fake_server: Process) -> None:
    client = sdk(fake_server)
    r = client.create_chat_message(
        inputs={}, query="x", user="sdk-user",
        conversation_id="00000000-0000-4000-8000-000000000000",
    )
    assert r.status_code == 404
    assert r.json() == {"code": "not_found", "message": "Conversation Not Exists.", "status": 404}


def test_second_start_reuses_demo_app(tmp_path: Path) -> None:
    first = start(tmp_path, PARLOUR_DEFAULT_MODEL="fake:echo")
    stop(first)
    second = start(tmp_path, PARLOUR_DEFAULT_MODEL="fake:echo")
    try:
        assert first.key and second.key is None
        r = httpx.post(
            second.base + "/v1/chat-messages",
            json={"query": "still here?", "user": "u", "response_mode": "blocking"},
            headers={"Authorization": f"Bearer {first.key}"},
        )
        assert r.status_code == 200 and r.json()["answer"] == "echo: still here?"
    finally:
        stop(second)


@pytest.mark.timeout(180)
def test_embedded_model_streams_real_tokens(tmp_path: Path) -> None:
    """The default set-up: no key, no network, the embedded SmolLM2 model."""
    process = start(tmp_path, PARLOUR_LOCAL_MAX_TOKENS="12")
    try:
        with httpx.stream(
            "POST",
            process.base + "/v1/chat-messages",
            json={"query": "Say hello.", "user": "curl", "response_mode": "streaming"},
            headers={"Authorization": f"Bearer {process.key}"},
            timeout=120,
        ) as r:
            frames = [
                json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")
            ]
        answer = "".join(f["answer"] for f in frames if f["event"] == "message")
        assert answer.strip(), frames
        end = frames[-1]
        assert end["event"] == "message_end", frames
        usage = end["metadata"]["usage"]
        assert 0 < usage["completion_tokens"] <= 12 and usage["prompt_tokens"] > 0
    finally:
        stop(process)
