"""The events of one chat turn, named as on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class MessageDelta:
    """``message``: a piece of the answer."""

    answer: str


@dataclass(slots=True)
class MessageEnd:
    """``message_end``: the terminal success event."""

    usage: dict[str, Any]
    retriever_resources: list[dict[str, Any]] = field(default_factory=list)
    annotation_reply: dict[str, Any] | None = None  # {id, account} when an annotation answered


@dataclass(slots=True)
class ErrorEvent:
    """``error``: the terminal failure event."""

    code: str
    status: int
    message: str


Event = MessageDelta | MessageEnd | ErrorEvent
