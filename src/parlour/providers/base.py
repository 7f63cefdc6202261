"""The protocol every chat model speaks: an async stream of typed chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(slots=True)
class CompletionParams:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)


def sampling(params: CompletionParams) -> dict[str, Any]:
    """The OpenAI-style sampling fields that are set (``max_tokens`` left to the caller)."""
    out: dict[str, Any] = {}
    if params.temperature is not None:
        out["temperature"] = params.temperature
    if params.top_p is not None:
        out["top_p"] = params.top_p
    if params.stop:
        out["stop"] = params.stop
    return out


def as_dicts(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class Finish:
    reason: str


Chunk = TextDelta | Usage | Finish


class ChatModel(Protocol):
    """A model that answers a list of chat messages.

    ``stream`` yields ``TextDelta`` chunks as they arrive, then optionally ``Usage`` (when the
    vendor reports it) and ``Finish``. Closing the iterator early must cancel the upstream call.
    Failures raise ``parlour.errors.ProviderError`` subclasses.
    """

    name: str
    context_window: int

    def stream(
        self, messages: list[ChatMessage], params: CompletionParams
    ) -> AsyncIterator[Chunk]: ...

    def count_tokens(self, text: str) -> int: ...


async def complete(model: ChatModel, messages: list[ChatMessage], params: CompletionParams) -> str:
    """Collect a whole answer (titles, suggestions); in one response where the model offers
    that (``answer``), which costs far less than reading a stream."""
    whole = getattr(model, "answer", None)
    if whole is not None:
        return str(await whole(messages, params))
    parts: list[str] = []
    stream = model.stream(messages, params)
    try:
        async for chunk in stream:
            if isinstance(chunk, TextDelta):
                parts.append(chunk.text)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    return "".join(parts)
