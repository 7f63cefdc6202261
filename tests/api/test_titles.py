"""Conversation titles: made while the first answer streams, stored with it when ready, and
those that come later stored together in one write."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select

from parlour.storage.models import Conversation
from tests.conftest import Server

SLOW_TITLE = "A Title Of Many Words That Takes Its Time"


async def names(server: Server, ids: list[str]) -> dict[str, str]:
    engine = server.database.engine()
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Conversation.id, Conversation.name).where(Conversation.id.in_(ids))
        )
        found = {row[0]: row[1] for row in rows}
    await engine.dispose()
    return found


async def test_late_titles_are_stored_together(server: Server) -> None:
    server.fake.delay = 0.02
    server.fake.script = lambda msgs: (
        SLOW_TITLE if msgs[0].content.startswith("Write a short title") else "short"
    )
    writes: list[list[tuple[str, str, datetime]]] = []
    writer = server.state.chat.titles
    writer.window = 0.5  # wide enough for a slow machine: the five titles come within it
    store = writer.hot.rename_many

    async def counted(batch: list[tuple[str, str, datetime]]) -> None:
        writes.append(batch)
        await store(batch)

    writer.hot = type("Spy", (), {"rename_many": staticmethod(counted)})()
    replies = await asyncio.gather(*(server.chat(f"question {i} here") for i in range(5)))
    ids = [r.json()["conversation_id"] for r in replies]
    assert set((await names(server, ids)).values()) == {f"question {i} here" for i in range(5)}
    await server.state.background.drain()
    assert await names(server, ids) == dict.fromkeys(ids, SLOW_TITLE)
    assert len(writes) == 1 and sorted(c for c, _, _ in writes[0]) == sorted(ids)


async def test_failed_title_keeps_the_query_name(server: Server) -> None:
    def script(msgs: list) -> str:  # type: ignore[type-arg]
        if msgs[0].content.startswith("Write a short title"):
            raise RuntimeError("no title today")
        return "answer"

    server.fake.script = script
    cid = (await server.chat("keep this name")).json()["conversation_id"]
    await server.state.background.drain()
    assert await names(server, [cid]) == {cid: "keep this name"}


async def test_title_ready_before_the_answer_ends_is_saved_with_it(server: Server) -> None:
    server.fake.delay = 0.05
    # the title (2 pieces) is ready before the answer (8 pieces) ends: one write for both
    server.fake.script = lambda msgs: (
        "Quick Title" if msgs[0].content.startswith("Write a short title")
        else "a long answer of eight words in it"
    )
    cid = (await server.chat("first question here")).json()["conversation_id"]
    assert await names(server, [cid]) == {cid: "Quick Title"}  # before any background work
    # the title is slower than the answer: the answer is saved first, the title when it comes
    server.fake.script = lambda msgs: (
        SLOW_TITLE if msgs[0].content.startswith("Write a short title") else "short"
    )
    cid = (await server.chat("second question here")).json()["conversation_id"]
    assert await names(server, [cid]) == {cid: "second question here"}
    await server.state.background.drain()
    assert await names(server, [cid]) == {cid: SLOW_TITLE}
