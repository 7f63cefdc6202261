"""The recipe of one chat turn: history → prompt → model → end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from parlour.appconfig import AppConfig
from parlour.pipeline.events import MessageDelta
from parlour.pipeline.prompt import build_messages, fill, with_context
from parlour.providers.base import ChatMessage, ChatModel, CompletionParams, TextDelta, Usage


@dataclass(slots=True)
class TurnState:
    """What the turn knows so far, readable by the caller even after a cancel."""

    messages: list[ChatMessage] = field(default_factory=list)
    usage: Usage | None = None


@dataclass(slots=True)
class TurnInput:
    config: AppConfig
    model: ChatModel
    query: str
    inputs: Mapping[str, Any]
    history: Sequence[tuple[str, str]]
    state: TurnState = field(default_factory=TurnState)
    context: str = ""  # retrieved knowledge, set before the model is called


def completion_params(config: AppConfig) -> CompletionParams:
    p = config.model.completion_params
    return CompletionParams(
        temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, stop=list(p.stop)
    )


async def run_turn(turn: TurnInput) -> AsyncGenerator[MessageDelta, None]:
    """Yield answer deltas; usage lands in ``turn.state``. Closing it cancels the model call."""
    model = turn.model
    params = completion_params(turn.config)
    messages = build_messages(
        system=with_context(fill(turn.config.pre_prompt, turn.inputs), turn.context),
        history=turn.history,
        query=turn.query,
        count=model.count_tokens,
        context_window=turn.config.model.context_window or model.context_window,
        max_tokens=params.max_tokens,
    )
    state = turn.state
    state.messages = messages
    parts: list[str] = []
    stream = model.stream(messages, params)
    try:
        async for chunk in stream:
            if type(chunk) is TextDelta:
                parts.append(chunk.text)
                yield MessageDelta(chunk.text)
            elif type(chunk) is Usage:
                state.usage = chunk
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    if state.usage is None:
        prompt = sum(model.count_tokens(m.content) + 4 for m in messages)
        state.usage = Usage(prompt, model.count_tokens("".join(parts)))


class EarlyStream:
    """A turn's deltas whose first one is already being fetched: the model call runs while
    the turn's rows are written, instead of after. Reading it is reading the turn; a cancel
    of the reader reaches the model call as before, since the reader awaits the fetch."""

    def __init__(
        self,
        stream: AsyncGenerator[MessageDelta, None],
        first: asyncio.Future[MessageDelta] | None = None,
    ):
        """``first``: the first delta when it was fetched already, else a task fetches it."""
        self._stream = stream
        if first is None:
            first = asyncio.ensure_future(_first(stream))
        self._first: asyncio.Future[MessageDelta] | None = first

    def __aiter__(self) -> AsyncIterator[MessageDelta]:
        return self

    def __anext__(self) -> Awaitable[MessageDelta]:
        first, self._first = self._first, None
        return first if first is not None else self._stream.__anext__()

    async def aclose(self) -> None:
        """Cancel the fetch if it was never read, then close the turn (its model call)."""
        first = self._first
        if first is not None:
            first.cancel()
            await asyncio.wait([first])  # kept until it is over: a cancel here can close again
            self._first = None
            if not first.cancelled():
                first.exception()  # seen: its failure is this turn's and it is over
        await self._stream.aclose()


async def _first(stream: AsyncGenerator[MessageDelta, None]) -> MessageDelta:
    return await stream.__anext__()
