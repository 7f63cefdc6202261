"""Turns opened and closed together go in one statement on PostgreSQL (GroupWriter), and each
caller still gets its own result: a stale key or a bad row fails only its own turn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import insert, select

from parlour.storage.batch import GroupWriter
from parlour.storage.db import make_sessionmaker
from parlour.storage.hotpath import KeyProof, NewTurn, Outcome, StaleKey, make_hot_path
from parlour.storage.hotpath_pg import PostgresHotPath
from parlour.storage.models import ApiKey, App, Conversation, EndUser, Message, utcnow
from tests.conftest import PG_URL, pg_schema

USAGE = {
    "prompt_tokens": 3, "completion_tokens": 5, "prompt_unit_price": "0",
    "completion_unit_price": "0", "prompt_price_unit": "0.001", "total_price": "0",
    "currency": "USD", "latency": 0.25,
}  # fmt: skip


async def submit(writer: GroupWriter[Any], item: Any) -> Any:
    """The item's result, awaited by a task of its own (as a request's task would)."""
    return await writer.put(item)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.written: list[list[Any]] = []  # the batches whose write is over

    async def write(self, items: list[Any]) -> list[Any]:
        self.batches.append(items)
        await asyncio.sleep(0.01)
        self.written.append(items)
        return [ValueError(i) if i == "bad" else i * 2 for i in items]


async def test_items_that_arrive_together_go_in_one_write() -> None:
    rec = Recorder()
    writer: GroupWriter[Any] = GroupWriter(rec.write)
    assert await submit(writer, 1) == 2  # alone: at once, alone
    first = asyncio.ensure_future(submit(writer, 10))
    await asyncio.sleep(0)  # the first write is on its way; these three wait for the next
    rest = [asyncio.ensure_future(submit(writer, x)) for x in (20, "bad", 30)]
    assert await first == 20
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert results[0] == 40 and results[2] == 60
    assert isinstance(results[1], ValueError)  # only its own caller gets the error
    assert rec.batches == [[1], [10], [20, "bad", 30]]


async def test_an_item_put_as_a_write_ends_is_written() -> None:
    """Put by a callback of the last result, after the write's task ended but before its
    own callback ran: it must start a write, not wait for one that is over."""
    rec = Recorder()
    writer: GroupWriter[Any] = GroupWriter(rec.write)
    later: list[Any] = []
    first = writer.put(1)
    first.add_done_callback(lambda _: later.append(writer.put(2)))
    assert await first == 2
    await asyncio.sleep(0)
    assert await asyncio.wait_for(later[0], 1) == 4


async def test_a_cancelled_caller_waits_for_its_write_or_drops_it() -> None:
    rec = Recorder()
    writer: GroupWriter[Any] = GroupWriter(rec.write)
    on_its_way = asyncio.ensure_future(submit(writer, 1))
    await asyncio.sleep(0.001)  # taken: the write has started
    queued = asyncio.ensure_future(submit(writer, 2))
    await asyncio.sleep(0)
    queued.cancel()  # not taken yet: never written
    on_its_way.cancel()
    await asyncio.sleep(0)
    assert not on_its_way.done()  # its cancel waits for the write
    with pytest.raises(asyncio.CancelledError):
        await on_its_way
    assert rec.written == [[1]]  # the cancel reached the caller once its write was over
    with pytest.raises(asyncio.CancelledError):
        await queued
    await asyncio.sleep(0.03)
    assert rec.batches == [[1]]


async def test_a_second_cancel_still_waits_for_the_write() -> None:
    rec = Recorder()
    writer: GroupWriter[Any] = GroupWriter(rec.write)
    caller = asyncio.ensure_future(submit(writer, 1))
    await asyncio.sleep(0.001)
    caller.cancel()
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert writer._flight is None or writer._flight.done()  # the write was over first


async def test_a_drain_cancelled_before_it_starts_leaves_no_caller_waiting() -> None:
    rec = Recorder()
    writer: GroupWriter[Any] = GroupWriter(rec.write)
    caller = asyncio.ensure_future(submit(writer, 1))
    await asyncio.sleep(0)  # queued; the drain task has not run yet
    assert writer._flight is not None
    writer._flight.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, 1)
    assert await submit(writer, 2) == 4  # and the writer still works
    assert rec.batches == [[2]]


@asynccontextmanager
async def postgres() -> AsyncIterator[tuple[PostgresHotPath, Any, str, str, str]]:
    """A hot path on a schema of its own, with an app, an end user and a key."""
    async with pg_schema(PG_URL) as db:
        engine = db.engine()
        sessions = make_sessionmaker(engine)
        app, user, key_hash, _ = await _fixture_rows(sessions)
        hot = make_hot_path(db.url, db.schema)
        assert isinstance(hot, PostgresHotPath)
        try:
            yield hot, sessions, app, user, key_hash
        finally:
            await hot.close()
            await engine.dispose()


async def test_postgres_close_writes_what_was_accepted_first() -> None:
    async with postgres() as (hot, sessions, app, user, _):
        turns = [_turn(app, user, n) for n in range(6)]
        await asyncio.gather(*(hot.open_turn(t, 10) for t in turns))
        closing = [
            asyncio.ensure_future(hot.close_turn(
                Outcome(t.message_id, "done", USAGE, "normal", None, utcnow())
            ))
            for t in turns
        ]  # fmt: skip
        await asyncio.sleep(0)
        await hot.close()  # while the outcomes are queued or on their way
        await asyncio.gather(*closing)
        async with sessions() as s:
            statuses = (await s.scalars(select(Message.status))).all()
        assert statuses == ["normal"] * 6


async def _fixture_rows(sessions: Any) -> tuple[str, str, str, Any]:
    app, user, key_hash = str(uuid.uuid4()), str(uuid.uuid4()), uuid.uuid4().hex
    now = utcnow()
    async with sessions.begin() as s:
        await s.execute(insert(App).values(id=app, name="a", config={}, created_at=now,
                                           updated_at=now, description="", mode="chat",
                                           status="normal", enable_api=True,
                                           max_active_requests=0))  # fmt: skip
        await s.execute(insert(EndUser).values(id=user, app_id=app, session_id="u",
                                               type="service-api", is_anonymous=False,
                                               created_at=now, updated_at=now))  # fmt: skip
        await s.execute(insert(ApiKey).values(id=str(uuid.uuid4()), app_id=app,
                                              key_hash=key_hash, key_hint="app-…x"))  # fmt: skip
    return app, user, key_hash, now


def _turn(app: str, user: str, n: int) -> NewTurn:
    return NewTurn(
        app_id=app, end_user_id=user, conversation_id=str(uuid.uuid4()),
        message_id=str(uuid.uuid4()), task_id=str(uuid.uuid4()), model="m", query=f"q{n}",
        inputs={"n": n}, worker="w", now=utcnow(), name=f"q{n}",
    )  # fmt: skip


async def test_postgres_writes_a_burst_of_turns_together() -> None:
    async with postgres() as (hot, sessions, app, user, key_hash):
        sizes: list[int] = []
        open_many = hot._open_many

        async def counting(items: list[Any]) -> list[Any]:
            sizes.append(len(items))
            return await open_many(items)

        hot._opens._write_many = counting
        await hot.open()
        key = await hot.key(key_hash)
        assert key is not None
        good = KeyProof(key_hash, key)
        stale = KeyProof(key_hash, type(key)(**{**_fields(key), "max_active_requests": 7}))
        turns = [_turn(app, user, n) for n in range(12)]
        turns[5].end_user_id = str(uuid.uuid4())  # no such end user: a row error
        proofs = [stale if n == 3 else None if n == 4 else good for n in range(12)]
        results = await asyncio.gather(
            *(hot.open_turn(t, 10, p) for t, p in zip(turns, proofs, strict=True)),
            return_exceptions=True,
        )
        assert isinstance(results[3], StaleKey)
        assert "foreign key" in str(results[5]).lower()
        written = [t for n, t in enumerate(turns) if n not in (3, 5)]
        assert all(results[n] == ({"n": n}, []) for n in range(12) if n not in (3, 5))
        assert max(sizes) > 1, sizes  # the burst went in fewer statements than turns
        outcomes = [
            Outcome(t.message_id, f"answer {t.query}", USAGE, "normal", None, utcnow(),
                    t.conversation_id, f"title {t.query}" if n % 2 else None)
            for n, t in enumerate(written)
        ]  # fmt: skip
        await asyncio.gather(*(hot.close_turn(o) for o in outcomes))
        async with sessions() as s:
            rows = {m.id: m for m in (await s.scalars(select(Message))).all()}
            names = dict((await s.execute(select(Conversation.id, Conversation.name))).all())
        assert set(rows) == {t.message_id for t in written}
        for n, t in enumerate(written):
            m = rows[t.message_id]
            assert (m.answer, m.status, m.prompt_tokens, m.latency) == (
                f"answer {t.query}", "normal", 3, 0.25,
            )
            assert m.inputs == {"n": int(t.query[1:])}
            assert names[t.conversation_id] == (f"title {t.query}" if n % 2 else t.query)


def _fields(row: Any) -> dict[str, Any]:
    return {f: getattr(row, f) for f in row.__slots__}


async def test_postgres_connections_go_back_to_the_pool_after_the_result() -> None:
    """Statements hand back their connection in a task after the caller has its result;
    none is kept, and close() waits for those that are still on their way back."""
    async with postgres() as (hot, _, _, _, key_hash):
        rows = await asyncio.gather(*(hot.key(key_hash) for _ in range(5)))
        assert all(row is not None for row in rows)
        pool = hot._pool
        for _ in range(100):
            if not hot._releasing:
                break
            await asyncio.sleep(0.01)
        assert not hot._releasing
        assert pool.get_idle_size() == pool.get_size()
        await hot.key(key_hash)
        assert hot._releasing  # on its way back as close() starts
        await hot.close()
        assert not hot._releasing
