"""Reading Dify-style SSE in tests."""

from __future__ import annotations

import json
from typing import Any

import httpx


def parse_frames(raw: str) -> list[dict[str, Any]]:
    """Every frame of a stream: ``data:`` frames decoded, pings as ``{"event": "ping"}``."""
    frames: list[dict[str, Any]] = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        if block.startswith("data: "):
            frames.append(json.loads(block[len("data: ") :]))
        elif block.strip() == "event: ping":
            frames.append({"event": "ping"})
        else:
            raise AssertionError(f"unexpected SSE block: {block!r}")
    return frames


async def stream_chat(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    body.setdefault("response_mode", "streaming")
    async with client.stream("POST", "/v1/chat-messages", json=body, headers=headers) as r:
        raw = (await r.aread()).decode()
    return r, parse_frames(raw) if r.status_code == 200 else []
