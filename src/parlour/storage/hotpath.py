"""The statements every chat message runs, in plain SQL on the raw driver.

A chat message costs at most three transactions: the key lookup (skipped when the worker
remembers the key: the next write proves it, see KeyProof), the rows written before the model
is called, and the outcome written after. Through the ORM layer and aiosqlite's per-statement
thread hops they cost more CPU than everything else in the request together, so they run
directly on the driver: on SQLite (hotpath_sqlite.py), one whole transaction per hop to one
database thread; on PostgreSQL (hotpath_pg.py), asyncpg's prepared statements. Here: the
statements both share, the values they pass, and the interface. The tables, columns and value
formats are exactly the ORM's (storage/models.py), so both layers read each other's rows.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy.engine import make_url

AUTH = (
    "SELECT a.id, a.name, a.description, a.mode, a.status, a.enable_api,"
    " a.max_active_requests, a.updated_at FROM api_keys k JOIN apps a ON a.id = k.app_id"
    " WHERE k.key_hash = {0} AND k.revoked_at IS NULL"
)
CONFIG = "SELECT config FROM apps WHERE id = {0}"
CONVERSATION = (
    "SELECT inputs FROM conversations WHERE id = {0} AND app_id = {1} AND end_user_id = {2}"
)
TOUCH = "UPDATE conversations SET updated_at = {0} WHERE id = {1}"
RENAME = "UPDATE conversations SET name = {0}, updated_at = {1} WHERE id = {2}"
TOUCH_INPUTS = "UPDATE conversations SET updated_at = {0}, inputs = {1} WHERE id = {2}"
# the running ones too: a conversation's last message may still be being answered or saved
HISTORY = (
    "SELECT query, answer, status FROM messages WHERE conversation_id = {0}"
    " AND status IN ('normal', 'stopped', 'running') ORDER BY created_at DESC, id DESC"
    " LIMIT {1}"
)
NEW_CONVERSATION = (
    "INSERT INTO conversations (id, app_id, end_user_id, mode, name, inputs, introduction,"
    " status, created_at, updated_at)"
    " VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, 'normal', {7}, {7})"
)
NEW_MESSAGE = (
    "INSERT INTO messages (id, app_id, conversation_id, end_user_id, task_id, model, query,"
    " answer, inputs, prompt_tokens, completion_tokens, prompt_unit_price,"
    " completion_unit_price, price_unit, total_price, currency, latency, status, worker,"
    " created_at, updated_at) VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, '', {7}, 0, 0, '0',"
    " '0', '0.001', '0', 'USD', 0, 'running', {8}, {9}, {9})"
)
FINISH = (
    "UPDATE messages SET answer = {0}, prompt_tokens = {1}, completion_tokens = {2},"
    " prompt_unit_price = {3}, completion_unit_price = {4}, price_unit = {5},"
    " total_price = {6}, currency = {7}, latency = {8}, status = {9}, error = {10},"
    " updated_at = {11} WHERE id = {12}"
)


# a remembered key row, proved still true in the statement that opens the turn
PROOF = (
    "SELECT 1 FROM api_keys k JOIN apps a ON a.id = k.app_id WHERE k.key_hash = {0}"
    " AND k.revoked_at IS NULL AND a.id = {1} AND a.updated_at = {2} AND a.status = 'normal'"
    " AND a.enable_api AND a.mode = {3} AND a.max_active_requests = {4}"
)


def sql(template: str, marks: list[str]) -> str:
    return template.format(*marks)


def insert_select(template: str, marks: list[str], source: str) -> str:
    """An ``INSERT … VALUES (…)`` template as ``INSERT … SELECT … FROM source``: the row is
    written once for each row of ``source`` (none, none written)."""
    head, values = sql(template, marks).split(" VALUES (")
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


class Unsaved(Exception):
    """The conversation's last message is still running: being answered, or its answer (which
    went out before its save) being saved, perhaps by another worker."""


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
    # a continued conversation: only once its last message is saved (else Unsaved, nothing
    # written), so that its history has the last answer
    last_saved: bool = False


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


def outcome_params(o: Outcome) -> list[Any]:
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


def merged_inputs(stored: str | None, sent: dict[str, Any]) -> dict[str, Any]:
    """A continued conversation's inputs: those it was started with, updated by any sent."""
    kept: dict[str, Any] = orjson.loads(stored) if stored else {}
    return {**kept, **sent} if sent else kept


def past_turns(t: NewTurn, rows: Any) -> list[tuple[str, str]]:
    """The history's (query, answer) pairs, oldest first, from HISTORY's rows."""
    if t.last_saved and rows and rows[0][2] == "running":
        raise Unsaved()
    return [(q, a) for q, a, status in reversed(rows) if a and status != "running"]


def message_params(t: NewTurn, inputs_json: str, now: Any) -> tuple[Any, ...]:
    """The values of NEW_MESSAGE, in its order."""
    return (t.message_id, t.app_id, t.conversation_id, t.end_user_id, t.task_id, t.model,
            t.query, inputs_json, t.worker, now)  # fmt: skip



def make_hot_path(
    url: str, schema: str = "", pool_size: int = 10, timeout: float = 10.0
) -> HotPath:
    """SQLite's (storage/hotpath_sqlite.py) or PostgreSQL's (storage/hotpath_pg.py)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        from parlour.storage.hotpath_sqlite import SqliteHotPath

        return SqliteHotPath(parsed.database or ":memory:")
    from parlour.storage.hotpath_pg import PostgresHotPath

    return PostgresHotPath(url, schema, pool_size, timeout)
