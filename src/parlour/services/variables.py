"""Conversation variables: declared in the app config, instantiated per conversation.

An app declares ``conversation_variables: [{name, value_type, value, description}]`` (Dify's
DSL shape; ``type`` and ``default`` are accepted as aliases). Each conversation gets its own
copy at creation (and, lazily, of variables the app declares later). Values are type-checked on
update, filled into the prompt as ``{{name}}``, and returned as JSON values of their type —
Dify returns Python ``str()`` renderings (``"True"``, ``"{'k': 'v'}"``); parlour does not.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parlour.appconfig import AppConfig
from parlour.errors import BadRequest
from parlour.storage.db import insert_ignoring_duplicates
from parlour.storage.models import ConversationVariable, epoch, utcnow

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SCALARS = ("string", "number", "integer", "boolean", "object", "secret")
ARRAYS = ("array[string]", "array[number]", "array[boolean]", "array[object]", "array[any]")
VALUE_TYPES = (*SCALARS, *ARRAYS)


@dataclass(frozen=True, slots=True)
class Declared:
    name: str
    value_type: str
    default: Any
    description: str


def declared(config: AppConfig) -> list[Declared]:
    out = []
    for item in config.conversation_variables:
        vtype = str(item.get("value_type") or item.get("type") or "string")
        default = item.get("value", item.get("default"))
        out.append(Declared(str(item["name"]), vtype, default, str(item.get("description") or "")))
    return out


def check_declarations(items: list[dict[str, Any]]) -> None:
    """Raise ValueError for a declaration parlour cannot instantiate (used on import)."""
    seen: set[str] = set()
    for item in items:
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(f"conversation variable name {name!r} is not a valid identifier")
        if name in seen:
            raise ValueError(f"conversation variable {name!r} is declared twice")
        seen.add(name)
        vtype = str(item.get("value_type") or item.get("type") or "string")
        if vtype not in VALUE_TYPES:
            raise ValueError(f"conversation variable {name!r}: unsupported type {vtype!r}")
        default = item.get("value", item.get("default"))
        if default is not None and not type_matches(vtype, default):
            raise ValueError(f"conversation variable {name!r}: default is not a {vtype}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_SCALAR_CHECK: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "secret": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}


def type_matches(value_type: str, value: Any) -> bool:
    """``null`` is accepted for every type (an unset variable)."""
    if value is None:
        return True
    if value_type.startswith("array[") and value_type.endswith("]"):
        inner = _SCALAR_CHECK.get(value_type[6:-1], lambda v: False)
        return isinstance(value, list) and all(inner(x) for x in value)
    check = _SCALAR_CHECK.get(value_type)
    return bool(check and check(value))


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "unknown"


def check_value(row: ConversationVariable, value: Any) -> None:
    if not type_matches(row.value_type, value):
        wire_type = "number" if row.value_type == "integer" else row.value_type
        raise BadRequest(
            f"Type mismatch: variable '{row.name}' expects {wire_type}, "
            f"but got {json_type(value)} type"
        )


def render(value: Any) -> str:
    """A value as it appears in a prompt: strings as they are, the rest as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def ensure(
    session: AsyncSession, config: AppConfig, app_id: str, conversation_id: str,
    now: datetime | None = None,
) -> list[ConversationVariable]:
    """The conversation's variables, creating any declared one it does not have yet."""
    decls = declared(config)
    rows = await _rows(session, conversation_id)
    have = {r.name for r in rows}
    missing = [(i, d) for i, d in enumerate(decls) if d.name not in have]
    if missing:
        now = now or utcnow()
        values = [
            {
                "id": str(uuid.uuid4()), "conversation_id": conversation_id, "app_id": app_id,
                "name": d.name, "value_type": d.value_type, "value": {"v": d.default},
                "description": d.description, "position": i, "created_at": now,
                "updated_at": now,
            }
            for i, d in missing
        ]
        await session.execute(insert_ignoring_duplicates(session, ConversationVariable), values)
        rows = await _rows(session, conversation_id)
    return rows


async def _rows(session: AsyncSession, conversation_id: str) -> list[ConversationVariable]:
    stmt = (
        select(ConversationVariable)
        .where(ConversationVariable.conversation_id == conversation_id)
        .order_by(ConversationVariable.position, ConversationVariable.id)
    )
    return list((await session.scalars(stmt)).all())


async def prompt_values(
    session: AsyncSession, config: AppConfig, app_id: str, conversation_id: str, now: datetime
) -> dict[str, str]:
    """``{{name}}`` values of a conversation's variables (instantiating them if needed)."""
    if not config.conversation_variables:
        return {}
    rows = await ensure(session, config, app_id, conversation_id, now)
    return {r.name: render(r.value.get("v")) for r in rows}


def variable_dict(row: ConversationVariable) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "value_type": "number" if row.value_type == "integer" else row.value_type,
        "value": row.value.get("v"),
        "description": row.description,
        "created_at": epoch(row.created_at),
        "updated_at": epoch(row.updated_at),
    }
