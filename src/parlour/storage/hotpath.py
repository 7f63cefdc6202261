"""The statements every chat message runs, in plain SQL on the raw driver.

A chat message costs at most three transactions: the key lookup (skipped when the worker
remembers the key: the next write proves it, see KeyProof), the rows written before the model
is called, and the outcome written after. Through the ORM layer and aiosqlite's per-statement
thread hops they cost more CPU than everything else in the request together, so they run
here directly: on SQLite, one whole transaction per hop to one database thread (which also
serialises writers, as SQLite wants); on PostgreSQL, asyncpg's prepared statements. The
tables, columns and value formats are exactly the ORM's (storage/models.py), so both layers
read each other's rows.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy.engine import make_url

from parlour.storage.batch import GroupWriter
from parlour.storage.serial import SerialThread

log = logging.getLogger("parlour.db")

_AUTH = (
    "SELECT a.id, a.name, a.description, a.mode, a.status, a.enable_api,"
    " a.max_active_requests, a.updated_at FROM api_keys k JOIN apps a ON a.id = k.app_id"
    " WHERE k.key_hash = {0} AND k.revoked_at IS NULL"
)
_CONFIG = "SELECT config FROM apps WHERE id = {0}"
_CONVERSATION = (
    "SELECT inputs FROM conversations WHERE id = {0} AND app_id = {1} AND end_user_id = {2}"
)
_TOUCH = "UPDATE conversations SET updated_at = {0} WHERE id = {1}"
_RENAME = "UPDATE conversations SET name = {0}, updated_at = {1} WHERE id = {2}"
_TOUCH_INPUTS = "UPDATE conversations SET updated_at = {0}, inputs = {1} WHERE id = {2}"
_HISTORY = (
    "SELECT query, answer FROM messages WHERE conversation_id = {0}"
    " AND status IN ('normal', 'stopped') ORDER BY created_at DESC, id DESC LIMIT {1}"
)
_NEW_CONVERSATION = (
    "INSERT INTO conversations (id, app_id, end_user_id, mode, name, inputs, introduction,"
    " status, created_at, updated_at)"
    " VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, 'normal', {7}, {7})"
)
_NEW_MESSAGE = (
    "INSERT INTO messages (id, app_id, conversation_id, end_user_id, task_id, model, query,"
    " answer, inputs, prompt_tokens, completion_tokens, prompt_unit_price,"
    " completion_unit_price, price_unit, total_price, currency, latency, status, worker,"
    " created_at, updated_at) VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, '', {7}, 0, 0, '0',"
    " '0', '0.001', '0', 'USD', 0, 'running', {8}, {9}, {9})"
)
_FINISH = (
    "UPDATE messages SET answer = {0}, prompt_tokens = {1}, completion_tokens = {2},"
    " prompt_unit_price = {3}, completion_unit_price = {4}, price_unit = {5},"
    " total_price = {6}, currency = {7}, latency = {8}, status = {9}, error = {10},"
    " updated_at = {11} WHERE id = {12}"
)


# a remembered key row, proved still true in the statement that opens the turn
_PROOF = (
    "SELECT 1 FROM api_keys k JOIN apps a ON a.id = k.app_id WHERE k.key_hash = {0}"
    " AND k.revoked_at IS NULL AND a.id = {1} AND a.updated_at = {2} AND a.status = 'normal'"
    " AND a.enable_api AND a.mode = {3} AND a.max_active_requests = {4}"
)

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


def _sql(template: str, marks: list[str]) -> str:
    return template.format(*marks)


def _insert_select(template: str, marks: list[str], source: str) -> str:
    """An ``INSERT … VALUES (…)`` template as ``INSERT … SELECT … FROM source``: the row is
    written once for each row of ``source`` (none, none written)."""
    head, values = _sql(template, marks).split(" VALUES (")
    return f"{head} SELECT {values.removesuffix(')')} FROM {source}"


@dataclass(slots=True)
class KeyRow:
    id: str
    name: str
    description: str
    mode: str
    status: str
    enable_api: bool
    max_active_requests: int
    updated_at: datetime
    # updated_at as the database holds it (SQLite: its text), for KeyProof to compare
    stamp: Any = None


@dataclass(frozen=True, slots=True)
class KeyProof:
    """The key row a request started from without reading it (see services/apps.KeyHints)."""

    key_hash: str
    row: KeyRow

    def params(self) -> tuple[Any, ...]:
        r = self.row
        stamp = r.updated_at if r.stamp is None else r.stamp
        return (self.key_hash, r.id, stamp, r.mode, r.max_active_requests)


class StaleKey(Exception):
    """The key row a turn started from is no longer true: revoked, or its app changed."""


@dataclass(slots=True)
class NewTurn:
    """The rows written before the model is called."""

    app_id: str
    end_user_id: str
    conversation_id: str
    message_id: str
    task_id: str
    model: str
    query: str
    inputs: dict[str, Any]
    worker: str
    now: datetime
    # a new conversation carries these; a continued one leaves name None
    mode: str = "chat"
    name: str | None = None
    introduction: str = ""
    update_inputs: bool = False


@dataclass(slots=True)
class Outcome:
    message_id: str
    answer: str
    usage: dict[str, Any]
    status: str
    error: str | None
    now: datetime
    # a new conversation's title, when the model made it before the answer ended
    conversation_id: str = ""
    name: str | None = None


class HotPath(Protocol):
    async def open(self) -> None:
        """Connect before the first request, so no request pays for it."""

    async def key(self, key_hash: str) -> KeyRow | None: ...

    async def config(self, app_id: str) -> dict[str, Any]: ...

    def open_turn(
        self, turn: NewTurn, history_limit: int, proof: KeyProof | None = None
    ) -> Awaitable[tuple[dict[str, Any], list[tuple[str, str]]] | None]:
        """Write the turn's rows; its inputs and history. None: no such conversation.
        With ``proof``, only if the key row still holds (else StaleKey, nothing written)."""

    def close_turn(self, outcome: Outcome) -> Awaitable[None]:
        """Write the turn's outcome (and its conversation's title, if it has one)."""

    async def rename_many(self, names: list[tuple[str, str, datetime]]) -> None:
        """(conversation id, name, time) for several conversations, in one write."""

    async def close(self) -> None: ...


def _outcome_params(o: Outcome) -> list[Any]:
    u = o.usage
    return [
        o.answer,
        u["prompt_tokens"],
        u["completion_tokens"],
        u["prompt_unit_price"],
        u["completion_unit_price"],
        u["prompt_price_unit"],
        u["total_price"],
        u["currency"],
        u["latency"],
        o.status,
        o.error,
    ]


def _merged_inputs(stored: str | None, sent: dict[str, Any]) -> dict[str, Any]:
    """A continued conversation's inputs: those it was started with, updated by any sent."""
    kept: dict[str, Any] = orjson.loads(stored) if stored else {}
    return {**kept, **sent} if sent else kept


def _message_params(t: NewTurn, inputs_json: str, now: Any) -> tuple[Any, ...]:
    """The values of _NEW_MESSAGE, in its order."""
    return (t.message_id, t.app_id, t.conversation_id, t.end_user_id, t.task_id, t.model,
            t.query, inputs_json, t.worker, now)  # fmt: skip


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite_time(value: datetime) -> str:
    """The ORM's SQLite DATETIME text: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteHotPath:
    def __init__(self, path: str):
        self.path = path
        self._thread = SerialThread("sqlite")
        self._conn: sqlite3.Connection | None = None
        q = ["?"] * 13
        self._auth, self._config = _sql(_AUTH, q), _sql(_CONFIG, q)
        self._conversation, self._history = _sql(_CONVERSATION, q), _sql(_HISTORY, q)
        self._touch, self._touch_inputs = _sql(_TOUCH, q), _sql(_TOUCH_INPUTS, q)
        self._new_conversation = _sql(_NEW_CONVERSATION, [f"?{i}" for i in range(1, 9)])
        self._new_message = _sql(_NEW_MESSAGE, [f"?{i}" for i in range(1, 11)])
        self._finish = _sql(_FINISH, q)
        self._rename = _sql(_RENAME, q)
        self._proof = _sql(_PROOF, q)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await self._thread.run(fn, *args)

    async def open(self) -> None:
        await self._run(self._db)

    def _key(self, key_hash: str) -> KeyRow | None:
        row = self._db().execute(self._auth, (key_hash,)).fetchone()
        if row is None:
            return None
        return KeyRow(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            bool(row[5]),
            row[6],
            datetime.fromisoformat(row[7]),
            row[7],
        )

    async def key(self, key_hash: str) -> KeyRow | None:
        result: KeyRow | None = await self._run(self._key, key_hash)
        return result

    def _config_of(self, app_id: str) -> dict[str, Any]:
        row = self._db().execute(self._config, (app_id,)).fetchone()
        return {} if row is None else dict(orjson.loads(row[0]))

    async def config(self, app_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._run(self._config_of, app_id)
        return result

    def _open(
        self, t: NewTurn, limit: int, proof: KeyProof | None
    ) -> tuple[dict[str, Any], list[tuple[str, str]]] | None:
        db = self._db()
        now = _sqlite_time(t.now)
        db.execute("BEGIN IMMEDIATE")
        try:
            if proof is not None:
                if db.execute(self._proof, proof.params()).fetchone() is None:
                    raise StaleKey()
            inputs, history = t.inputs, []
            if t.name is None:
                row = db.execute(
                    self._conversation, (t.conversation_id, t.app_id, t.end_user_id)
                ).fetchone()
                if row is None:
                    db.execute("ROLLBACK")
                    return None
                inputs = _merged_inputs(row[0], t.inputs)
                inputs_json = orjson.dumps(inputs).decode()
                if t.inputs and t.update_inputs:
                    db.execute(self._touch_inputs, (now, inputs_json, t.conversation_id))
                else:
                    db.execute(self._touch, (now, t.conversation_id))
                rows = db.execute(self._history, (t.conversation_id, limit)).fetchall()
                history = [(q, a) for q, a in reversed(rows) if a]
            else:
                inputs_json = orjson.dumps(inputs).decode()
                db.execute(
                    self._new_conversation,
                    (t.conversation_id, t.app_id, t.end_user_id, t.mode, t.name, inputs_json,
                     t.introduction, now),
                )  # fmt: skip
            db.execute(self._new_message, _message_params(t, inputs_json, now))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return inputs, history

    def open_turn(
        self, turn: NewTurn, history_limit: int, proof: KeyProof | None = None
    ) -> Awaitable[tuple[dict[str, Any], list[tuple[str, str]]] | None]:
        """Queued for the writer thread at the call: a future, not a coroutine."""
        return self._thread.submit(self._open, turn, history_limit, proof)

    def _close(self, o: Outcome) -> None:
        db, now = self._db(), _sqlite_time(o.now)
        params = [*_outcome_params(o), now, o.message_id]
        if o.name is None:
            db.execute(self._finish, params)
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(self._finish, params)
            db.execute(self._rename, (o.name, now, o.conversation_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close_turn(self, outcome: Outcome) -> Awaitable[None]:
        """Queued for the writer thread at the call: a future, not a coroutine."""
        return self._thread.submit(self._close, outcome)

    def _rename_many_sync(self, names: list[tuple[str, str, datetime]]) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(self._rename, [(n, _sqlite_time(at), c) for c, n, at in names])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def rename_many(self, names: list[tuple[str, str, datetime]]) -> None:
        await self._run(self._rename_many_sync, names)

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(shut)
        await self._thread.close()


# --- PostgreSQL --------------------------------------------------------------------------------


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
        self._auth, self._config = _sql(_AUTH, d), _sql(_CONFIG, d)
        self._conversation, self._history = _sql(_CONVERSATION, d), _sql(_HISTORY, d)
        self._touch = _sql(_TOUCH, d)
        self._touch_inputs = _sql(_TOUCH_INPUTS, ["$1", "$2::json", "$3"])
        new_conversation = _sql(
            _NEW_CONVERSATION, ["$1", "$2", "$3", "$4", "$5", "$6::json", "$7", "$8"]
        )
        self._new_message = _sql(
            _NEW_MESSAGE, ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8::json", "$9", "$10"]
        )
        self._finish = _sql(_FINISH, d)
        # conversation $1-$8 (inputs $6, time $8), then the message's own values from $9
        self._new_turn = f"WITH c AS ({new_conversation}) " + _sql(
            _NEW_MESSAGE, ["$9", "$2", "$1", "$3", "$10", "$11", "$12", "$6::json", "$13", "$8"]
        )
        # the same, written only while the key row holds ($14-$18, see KeyProof.params)
        proof = _sql(_PROOF, ["$14", "$2", "$15", "$4", "$16"])
        self._proof = _sql(_PROOF, d)
        conversation = _insert_select(
            _NEW_CONVERSATION,
            ["$1", "$2", "$3", "$4", "$5", "$6::json", "$7", "$8::timestamp"],
            "ok",
        )
        message = _insert_select(
            _NEW_MESSAGE,
            ["$9", "$2", "c.id", "$3", "$10", "$11", "$12", "$6::json", "$13", "$8::timestamp"],
            "c",
        )
        turn = f"WITH ok AS ({proof}), c AS ({conversation} RETURNING id) {message}"
        self._new_turn_proved = turn
        # the outcome ($1-$13, time $12) and the conversation's title ($14, id $15) at once
        self._finish_named = f"WITH m AS ({self._finish}) " + _sql(_RENAME, ["$14", "$12", "$15"])
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
            inputs = _merged_inputs(raw[0], t.inputs)
            inputs_json = orjson.dumps(inputs).decode()
            if t.inputs and t.update_inputs:
                await conn.execute(self._touch_inputs, t.now, inputs_json, t.conversation_id)
            else:
                await conn.execute(self._touch, t.now, t.conversation_id)
            rows = await conn.fetch(self._history, t.conversation_id, history_limit)
            await conn.execute(self._new_message, *_message_params(t, inputs_json, t.now))
        return inputs, [(r[0], r[1]) for r in reversed(rows) if r[1]]

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
        rows = [(*_outcome_params(o), o.now, o.message_id, o.name, o.conversation_id or None)
                for o in outcomes]  # fmt: skip
        async with self._conn() as conn:
            await conn.execute(_CLOSE_MANY, *map(list, zip(*rows, strict=True)),
                               timeout=self.timeout)  # fmt: skip
        return [None] * len(outcomes)

    async def _close_one(self, o: Outcome) -> None:
        async with self._conn() as conn:
            if o.name is None:
                await conn.execute(self._finish, *_outcome_params(o), o.now, o.message_id,
                                   timeout=self.timeout)  # fmt: skip
                return
            await conn.execute(
                self._finish_named,
                *_outcome_params(o), o.now, o.message_id, o.name, o.conversation_id,
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


def make_hot_path(
    url: str, schema: str = "", pool_size: int = 10, timeout: float = 10.0
) -> HotPath:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        return SqliteHotPath(database)
    return PostgresHotPath(url, schema, pool_size, timeout)
