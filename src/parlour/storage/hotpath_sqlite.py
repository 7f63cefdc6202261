"""The hot path on SQLite: each call is one whole transaction, run by the one thread that owns
the database connection (SQLite wants its writers one at a time), so a chat message costs one
hop to that thread per write, not one per statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

import orjson

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
    merged_inputs,
    message_params,
    outcome_params,
    past_turns,
    sql,
)
from parlour.storage.serial import SerialThread


def _sqlite_time(value: datetime) -> str:
    """The ORM's SQLite DATETIME text: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteHotPath:
    def __init__(self, path: str):
        self.path = path
        self._thread = SerialThread("sqlite")
        self._conn: sqlite3.Connection | None = None
        q = ["?"] * 13
        self._auth, self._config = sql(AUTH, q), sql(CONFIG, q)
        self._conversation, self._history = sql(CONVERSATION, q), sql(HISTORY, q)
        self._touch, self._touch_inputs = sql(TOUCH, q), sql(TOUCH_INPUTS, q)
        self._new_conversation = sql(NEW_CONVERSATION, [f"?{i}" for i in range(1, 9)])
        self._new_message = sql(NEW_MESSAGE, [f"?{i}" for i in range(1, 11)])
        self._finish = sql(FINISH, q)
        self._rename = sql(RENAME, q)
        self._proof = sql(PROOF, q)

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
                inputs = merged_inputs(row[0], t.inputs)
                inputs_json = orjson.dumps(inputs).decode()
                if t.inputs and t.update_inputs:
                    db.execute(self._touch_inputs, (now, inputs_json, t.conversation_id))
                else:
                    db.execute(self._touch, (now, t.conversation_id))
                rows = db.execute(self._history, (t.conversation_id, limit)).fetchall()
                history = past_turns(t, rows)
            else:
                inputs_json = orjson.dumps(inputs).decode()
                db.execute(
                    self._new_conversation,
                    (t.conversation_id, t.app_id, t.end_user_id, t.mode, t.name, inputs_json,
                     t.introduction, now),
                )  # fmt: skip
            db.execute(self._new_message, message_params(t, inputs_json, now))
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
        params = [*outcome_params(o), now, o.message_id]
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

