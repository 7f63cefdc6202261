"""A scripted, deterministic model for tests: no network, no randomness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from parlour.errors import ProviderError
from parlour.providers.base import ChatMessage, Chunk, CompletionParams, Finish, TextDelta, Usage
from parlour.providers.tokens import count_tokens

Script = Callable[[list[ChatMessage]], str]


def echo(messages: list[ChatMessage]) -> str:
    """Default script: answers ``echo: <last user message>``."""
    last = next((m.content for m in reversed(messages) if m.role == "user"), "")
    return f"echo: {last}"


@dataclass
class FakeChatModel:
    """Answers with ``script(messages)``, split on spaces into deltas.

    ``delay`` sleeps before each delta; ``fail_with`` raises after ``fail_after`` deltas;
    ``calls`` records every request and ``cancelled`` counts streams closed before the end.
    """

    name: str = "fake:echo"
    script: Script = echo
    delay: float = 0.0
    fail_with: ProviderError | None = None
    fail_after: int = 0
    report_usage: bool = True
    context_window: int = 4096
    calls: list[list[ChatMessage]] = field(default_factory=list)
    cancelled: int = 0
    finished: int = 0

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)

    async def stream(
        self, messages: list[ChatMessage], params: CompletionParams
    ) -> AsyncIterator[Chunk]:
        self.calls.append(list(messages))
        answer = self.script(messages)
        words = answer.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        if params.max_tokens:
            pieces = pieces[: params.max_tokens]
        done = False
        try:
            for i, piece in enumerate(pieces):
                if self.fail_with is not None and i >= self.fail_after:
                    raise self.fail_with
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield TextDelta(piece)
            if self.fail_with is not None and self.fail_after >= len(pieces):
                raise self.fail_with
            if self.report_usage:
                prompt = sum(count_tokens(m.content) for m in messages)
                yield Usage(prompt, count_tokens("".join(pieces)))
            yield Finish("stop")
            done = True
        finally:
            if done:
                self.finished += 1
            else:
                self.cancelled += 1
