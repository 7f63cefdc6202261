"""SIGTERM: the server lets open streams finish within its grace period, then ends the rest
with an error event; either way the message is saved, never left running."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from tests.mock_llm import mock_llm
from tests.test_e2e import start


def stream_then_terminate(
    tmp_path: Path, grace: str, after: float, tokens: int = 10, delay_ms: int = 300
) -> tuple[list[Any], tuple[str, str]]:
    """One stream from a server on the mock (10 tokens, 0.3 s each); SIGTERM ``after``
    seconds into it. The stream's frames (or its JSON error body), and its message row once
    the server is gone."""
    with mock_llm(free_port(), tokens=tokens, delay_ms=delay_ms) as upstream:
        server = start(
            tmp_path, PARLOUR_DEFAULT_MODEL="openai:mock-gpt", PARLOUR_OPENAI_BASE_URL=upstream,
            PARLOUR_SHUTDOWN_GRACE=grace,
        )  # fmt: skip
        frames: list[Any] = []

        def read() -> None:
            body = {"query": "hello", "user": "u", "response_mode": "streaming",
                    "auto_generate_name": False}  # fmt: skip
            headers = {"Authorization": f"Bearer {server.key}"}
            url = server.base + "/v1/chat-messages"
            with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as r:
                if r.headers["content-type"].startswith("application/json"):
                    frames.append({"status_code": r.status_code, **json.loads(r.read())})
                    return
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        frames.append(json.loads(line[6:]))

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(after)
        server.proc.send_signal(signal.SIGTERM)
        reader.join(20)
        # uvicorn raises the signal again once it has shut down, so the exit is the signal's
        assert server.proc.wait(timeout=20) in (0, -signal.SIGTERM)
        log = server.log.read_text()
    assert "Traceback" not in log, log
    with sqlite3.connect(tmp_path / "parlour.db") as db:
        rows = db.execute("SELECT status, answer FROM messages").fetchall()
    assert len(rows) == 1
    return frames, rows[0]


def answer(frames: list[Any]) -> str:
    return "".join(f["answer"] for f in frames if f["event"] == "message")


def test_a_stream_within_the_grace_period_finishes(tmp_path: Path) -> None:
    frames, (status, saved) = stream_then_terminate(tmp_path, grace="10", after=1.0)
    assert frames[-1]["event"] == "message_end"
    assert len(answer(frames).split()) == 10
    assert (status, saved) == ("normal", answer(frames))


def test_a_stream_past_the_grace_period_ends_with_an_error_event(tmp_path: Path) -> None:
    frames, (status, saved) = stream_then_terminate(tmp_path, grace="1", after=1.0)
    assert frames[-1]["event"] == "error"
    assert frames[-1]["status"] == 503 and "shutting down" in frames[-1]["message"]
    partial = answer(frames)
    assert 0 < len(partial.split()) < 10
    assert status == "stopped" and saved.startswith(partial)


def test_a_stream_still_waiting_for_its_first_token_ends_with_an_error_event(
    tmp_path: Path,
) -> None:
    """A model not yet known to answer quickly: the stream began when its rows were written,
    so the grace period's end reaches it as an error event."""
    frames, (status, saved) = stream_then_terminate(
        tmp_path, grace="1", after=0.5, tokens=2, delay_ms=5000
    )
    assert [f["event"] for f in frames] == ["error"]
    assert frames[0]["status"] == 503 and "shutting down" in frames[0]["message"]
    assert (status, saved) == ("stopped", "")
