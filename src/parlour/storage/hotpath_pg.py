"""The hot path on PostgreSQL: asyncpg's prepared statements on a pool. New conversations'
rows, and outcomes, go in one statement with the others of their kind waiting meanwhile
(storage/batch.GroupWriter), and each caller still gets its own result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.engine import make_url

from parlour.storage.batch import GroupWriter
from parlour.storage.hotpath import (
    AUTH,
    CONFIG,
    CONVERSATION,
    FINISH,
    HISTORY,
    NEW_CONVERSATION,
    NEW_MESSAGE,
    PROOF,
    RENAME,
    TOUCH,
    TOUCH_INPUTS,
    KeyProof,
    KeyRow,
    NewTurn,
    Outcome,
    StaleKey,
    insert_select,
    merged_inputs,
    message_params,
    outcome_params,
    past_turns,
    sql,
)

log = logging.getLogger("parlour.db")

_RENAME_MANY = (
    "UPDATE conversations AS c SET name = v.name, updated_at = v.at"
    " FROM unnest($1::varchar[], $2::varchar[], $3::timestamp[]) AS v(id, name, at)"
    " WHERE c.id = v.id"
)

# several new conversations with their first messages, in one statement (PostgreSQL): each
# row is written only while its key row holds (key_hash null: no proof needed); the ids of
# the messages written come back
_OPEN_MANY = (
    "WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
    " $5::text[], $6::text[], $7::text[], $8::timestamp[], $9::text[], $10::text[], $11::text[],"
    " $12::text[], $13::text[], $14::text[], $15::timestamp[], $16::int[]) AS v(cid, app_id,"
    " end_user_id, mode, name, inputs, introduction, at, mid, task_id, model, query, worker,"
    " key_hash, stamp, most)),"
    " ok AS (SELECT v.* FROM v WHERE v.key_hash IS NULL OR EXISTS (SELECT 1 FROM api_keys k"
    " JOIN apps a ON a.id = k.app_id WHERE k.key_hash = v.key_hash AND k.revoked_at IS NULL"
    " AND a.id = v.app_id AND a.updated_at = v.stamp AND a.status = 'normal' AND a.enable_api"
    " AND a.mode = v.mode AND a.max_active_requests = v.most)),"
    " c AS (INSERT INTO conversations (id, app_id, end_user_id, mode, name, inputs,"
    " introduction, status, created_at, updated_at) SELECT cid, app_id, end_user_id, mode,"
    " name, inputs::json, introduction, 'normal', at, at FROM ok RETURNING id)"
    " INSERT INTO messages (id, app_id, conversation_id, end_user_id, task_id, model, query,"
    " answer, inputs, prompt_tokens, completion_tokens, prompt_unit_price,"
    " completion_unit_price, price_unit, total_price, currency, latency, status, worker,"
    " created_at, updated_at) SELECT ok.mid, ok.app_id, c.id, ok.end_user_id, ok.task_id,"
    " ok.model, ok.query, '', ok.inputs::json, 0, 0, '0', '0', '0.001', '0', 'USD', 0,"
    " 'running', ok.worker, ok.at, ok.at FROM ok JOIN c ON c.id = ok.cid RETURNING id"
)

# several outcomes, and the titles that came with them, in one statement (PostgreSQL)
_CLOSE_MANY = (
    "WITH v AS (SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::text[],"
    " $6::text[], $7::text[], $8::text[], $9::float8[], $10::text[], $11::text[],"
    " $12::timestamp[], $13::text[], $14::text[], $15::text[]) AS v(answer, pt, ct, pup, cup,"
    " pu, tp, cur, latency, status, error, at, mid, name, cid)),"
    " m AS (UPDATE messages AS m SET answer = v.answer, prompt_tokens = v.pt,"
    " completion_tokens = v.ct, prompt_unit_price = v.pup, completion_unit_price = v.cup,"
    " price_unit = v.pu, total_price = v.tp, currency = v.cur, latency = v.latency,"
    " status = v.status, error = v.error, updated_at = v.at FROM v WHERE m.id = v.mid)"
    " UPDATE conversations AS c SET name = v.name, updated_at = v.at FROM v"
    " WHERE v.name IS NOT NULL AND c.id = v.cid"
)



class PostgresHotPath:
    def __init__(self, url: str, schema: str = "", pool_size: int = 10, timeout: float = 10.0):
        sa_url = make_url(url)
        self.timeout = timeout
        self.dsn = sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.schema = schema
        self.pool_size = pool_size
        self._pool: Any = None
        self._releasing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        d = [f"${i}" for i in range(1, 14)]
        self._auth, self._config = sql(AUTH, d), sql(CONFIG, d)
        self._conversation, self._history = sql(CONVERSATION, d), sql(HISTORY, d)
        self._touch = sql(TOUCH, d)
        self._touch_inputs = sql(TOUCH_INPUTS, ["$1", "$2::json", "$3"])
        new_conversation = sql(
            NEW_CONVERSATION, ["$1", "$2", "$3", "$4", "$5", "$6::json", "$7", "$8"]
        )
        self._new_message = sql(
            NEW_MESSAGE, ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8::json", "$9", "$10"]
        )
        self._finish = sql(FINISH, d)
        # conversation $1-$8 (inputs $6, time $8), then the message's own values from $9
        self._new_turn = f"WITH c AS ({new_conversation}) " + sql(
            NEW_MESSAGE, ["$9", "$2", "$1", "$3", "$10", "$11", "$12", "$6::json", "$13", "$8"]
        )
        # the same, written only while the key row holds ($14-$18, see KeyProof.params)
        proof = sql(PROOF, ["$14", "$2", "$15", "$4", "$16"])
        self._proof = sql(PROOF, d)
        conversation = insert_select(
            NEW_CONVERSATION,
            ["$1", "$2", "$3", "$4", "$5", "$6::json", "$7", "$8::timestamp"],
            "ok",
        )
        message = insert_select(
            NEW_MESSAGE,
            ["$9", "$2", "c.id", "$3", "$10", "$11", "$12", "$6::json", "$13", "$8::timestamp"],
            "c",
        )
        turn = f"WITH ok AS ({proof}), c AS ({conversation} RETURNING id) {message}"
        self._new_turn_proved = turn
        # the outcome ($1-$13, time $12) and the conversation's title ($14, id $15) at once
        self._finish_named = f"WITH m AS ({self._finish}) " + sql(RENAME, ["$14", "$12", "$15"])
        self._opens: GroupWriter[tuple[NewTurn, KeyProof | None]] = GroupWriter(self._open_many)
        self._closes: GroupWriter[Outcome] = GroupWriter(self._close_many)

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    import asyncpg

                    settings = {"search_path": self.schema} if self.schema else None
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=1,
                        max_size=self.pool_size,
                        server_settings=settings,
                        timeout=self.timeout,
                        command_timeout=self.timeout,
                        reset=_keep_session,
                    )
        return self._pool

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        """A pooled connection, handed back once the caller has its result: asyncpg's own
        release runs in a task behind a shield, two turns of the event loop (milliseconds
        each under load) that every statement's caller would otherwise wait for."""
        pool = await self._get_pool()
        async with asyncio.timeout(self.timeout):
            conn = await pool.acquire()
        try:
            yield conn
        finally:
            release = asyncio.get_running_loop().create_task(pool.release(conn))
            self._releasing.add(release)
            release.add_done_callback(self._released)

    def _released(self, release: asyncio.Task[None]) -> None:
        self._releasing.discard(release)
        if not release.cancelled() and release.exception() is not None:
            log.warning("a database connection went back to the pool with an error: %r",
                        release.exception())  # fmt: skip

    async def open(self) -> None:
        await self._get_pool()

    async def key(self, key_hash: str) -> KeyRow | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(self._auth, key_hash, timeout=self.timeout)
        return None if row is None else KeyRow(*row)

    async def config(self, app_id: str) -> dict[str, Any]:
        async with self._conn() as conn:
            raw = await conn.fetchval(self._config, app_id, timeout=self.timeout)
        return {} if raw is None else dict(orjson.loads(raw))

    def open_turn(
        self, t: NewTurn, history_limit: int, proof: KeyProof | None = None
    ) -> Awaitable[tuple[dict[str, Any], list[tuple[str, str]]] | None]:
        """A new conversation's rows are queued at the call, to go in one statement with
        others (a future, not a coroutine); a continued one's are read and written at once."""
        if t.name is not None:
            return self._opens.put((t, proof))
        return self._continue(t, history_limit, proof)

    async def _continue(
        self, t: NewTurn, history_limit: int, proof: KeyProof | None
    ) -> tuple[dict[str, Any], list[tuple[str, str]]] | None:
        # a continued conversation: its inputs and history are read in the same transaction
        async with self._conn() as conn, conn.transaction():
            if proof is not None and await conn.fetchval(self._proof, *proof.params()) is None:
                raise StaleKey()
            raw = await conn.fetchrow(
                self._conversation, t.conversation_id, t.app_id, t.end_user_id
            )
            if raw is None:
                return None
            history = past_turns(t, await conn.fetch(self._history, t.conversation_id,
                                                     history_limit))  # fmt: skip
            inputs = merged_inputs(raw[0], t.inputs)
            inputs_json = orjson.dumps(inputs).decode()
            if t.inputs and t.update_inputs:
                await conn.execute(self._touch_inputs, t.now, inputs_json, t.conversation_id)
            else:
                await conn.execute(self._touch, t.now, t.conversation_id)
            await conn.execute(self._new_message, *message_params(t, inputs_json, t.now))
        return inputs, history

    async def _open_many(self, items: list[tuple[NewTurn, KeyProof | None]]) -> list[Any]:
        """Each turn's inputs and (empty) history once written; StaleKey for each whose key
        row no longer holds."""
        results = await _grouped(items, lambda item: self._open_one(*item), self._open_all)
        pairs = zip(items, results, strict=True)
        return [(t.inputs, []) if r is None else r for (t, _), r in pairs]

    async def _open_all(self, items: list[tuple[NewTurn, KeyProof | None]]) -> list[Any]:
        rows = [_open_row(t, proof) for t, proof in items]
        async with self._conn() as conn:
            written = await conn.fetch(_OPEN_MANY, *map(list, zip(*rows, strict=True)),
                                       timeout=self.timeout)  # fmt: skip
        ids = {r[0] for r in written}
        return [None if t.message_id in ids else StaleKey() for t, _ in items]

    async def _open_one(self, t: NewTurn, proof: KeyProof | None) -> StaleKey | None:
        values = _open_row(t, proof)  # _new_turn's 13, then the proof's 3 (or None)
        async with self._conn() as conn:
            if proof is None:
                await conn.execute(self._new_turn, *values[:13], timeout=self.timeout)
                return None
            status = await conn.execute(self._new_turn_proved, *values, timeout=self.timeout)
        return StaleKey() if status.endswith(" 0") else None

    def close_turn(self, o: Outcome) -> Awaitable[None]:
        return self._closes.put(o)

    async def _close_many(self, outcomes: list[Outcome]) -> list[Any]:
        return await _grouped(outcomes, self._close_one, self._close_all)

    async def _close_all(self, outcomes: list[Outcome]) -> list[Any]:
        rows = [(*outcome_params(o), o.now, o.message_id, o.name, o.conversation_id or None)
                for o in outcomes]  # fmt: skip
        async with self._conn() as conn:
            await conn.execute(_CLOSE_MANY, *map(list, zip(*rows, strict=True)),
                               timeout=self.timeout)  # fmt: skip
        return [None] * len(outcomes)

    async def _close_one(self, o: Outcome) -> None:
        async with self._conn() as conn:
            if o.name is None:
                await conn.execute(self._finish, *outcome_params(o), o.now, o.message_id,
                                   timeout=self.timeout)  # fmt: skip
                return
            await conn.execute(
                self._finish_named,
                *outcome_params(o), o.now, o.message_id, o.name, o.conversation_id,
                timeout=self.timeout,
            )  # fmt: skip

    async def rename_many(self, names: list[tuple[str, str, datetime]]) -> None:
        ids, titles, times = (list(column) for column in zip(*names, strict=True))
        async with self._conn() as conn:
            await conn.execute(_RENAME_MANY, ids, titles, times, timeout=self.timeout)

    async def close(self) -> None:
        await self._opens.flush()  # what was accepted is written before the pool closes
        await self._closes.flush()
        while self._releasing:
            await asyncio.wait(list(self._releasing))
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _open_row(t: NewTurn, proof: KeyProof | None) -> tuple[Any, ...]:
    """A new turn's values in _OPEN_MANY's order (the first 13 are _new_turn's)."""
    key_hash, stamp, most = None, None, None
    if proof is not None:
        key_hash, _, stamp, _, most = proof.params()
    return (
        t.conversation_id, t.app_id, t.end_user_id, t.mode, t.name,
        orjson.dumps(t.inputs).decode(), t.introduction, t.now, t.message_id, t.task_id,
        t.model, t.query, t.worker, key_hash, stamp, most,
    )  # fmt: skip


def _row_error(exc: Exception) -> bool:
    """An error one row of a group write can cause (a constraint, a value): the rows are then
    written one by one, so that only that row's caller gets it."""
    import asyncpg

    return isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError)


async def _grouped(
    items: list[Any],
    one: Callable[[Any], Coroutine[Any, Any, Any]],
    all_at_once: Callable[[list[Any]], Coroutine[Any, Any, list[Any]]],
) -> list[Any]:
    """A group write's results: a lone item by its own statement, several by one statement
    for all; after a row error, one by one, so that only that row's caller gets it."""
    if len(items) == 1:
        return [await one(items[0])]
    try:
        return await all_at_once(items)
    except Exception as exc:
        if not _row_error(exc):
            raise
        return await _one_by_one([one(item) for item in items])


async def _one_by_one(writes: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Each write's result or error, in order; once one fails for another reason than its
    row (the database went away), the rest get that error without being tried."""
    results: list[Any] = []
    down: Exception | None = None
    for write in writes:
        if down is not None:
            write.close()
            results.append(down)
            continue
        try:
            results.append(await write)
        except Exception as exc:
            results.append(exc)
            down = None if _row_error(exc) else exc
    return results


async def _keep_session(_conn: Any) -> None:
    """The pool's reset on release. The default sends RESET ALL, CLOSE ALL, UNLISTEN * and an
    advisory-unlock query: a round trip for every statement of the hot path. Its statements
    change no session state (an open transaction is still rolled back by the pool)."""

