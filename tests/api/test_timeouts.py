"""Everything that waits has a limit: a silent model ends the stream with an error event, and
the execution cap ends a long answer like a stop (``message_end``, partial answer kept)."""

from __future__ import annotations

from pathlib import Path

from parlour.providers.fake import FakeChatModel
from tests.conftest import Database, run_server
from tests.sse import stream_chat


async def test_silent_model_is_an_error_event(database: Database, tmp_path: Path) -> None:
    model = FakeChatModel(delay=1.0)
    async with run_server(database, tmp_path, model, first_token_timeout=0.2) as s:
        r, frames = await stream_chat(s.client, s.auth(), query="hello", user="u")
        assert frames[-1]["event"] == "error"
        assert frames[-1]["code"] == "completion_request_error"
        assert "in time" in frames[-1]["message"]
        assert model.cancelled == 1


async def test_execution_cap_ends_like_a_stop(database: Database, tmp_path: Path) -> None:
    model = FakeChatModel(delay=0.1)
    async with run_server(database, tmp_path, model, max_execution_time=0.45) as s:
        words = " ".join(f"w{i}" for i in range(50))
        r, frames = await stream_chat(s.client, s.auth(), query=words, user="u",
                                      auto_generate_name=False)
        assert frames[-1]["event"] == "message_end"
        answer = "".join(f["answer"] for f in frames if f["event"] == "message")
        assert answer.startswith("echo:") and len(answer.split()) < 20
