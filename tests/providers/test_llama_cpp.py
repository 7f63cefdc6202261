"""The embedded model's scheduling: one generation at a time, FIFO, a bounded queue, and a
stop that ends generation within a token. A stand-in ``Llama`` object is scripted here; the
real model runs in tests/test_e2e.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from parlour.errors import ServiceUnavailable
from parlour.providers.base import ChatMessage, CompletionParams, TextDelta, Usage
from parlour.providers.llama_cpp import LlamaCppModel, smollm2_path, verify_sha256


class ScriptedLlama:
    """Yields llama-cpp-python style chunks; records overlap and how far each run got."""

    def __init__(self, tokens: int = 5, delay: float = 0.02):
        self.tokens, self.delay = tokens, delay
        self.active = 0
        self.max_active = 0
        self.order: list[str] = []
        self.produced: list[int] = []
        self.lock = threading.Lock()

    def create_chat_completion(self, messages: list[dict[str, str]], **_: Any) -> Iterator[Any]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.order.append(messages[-1]["content"])
        n = 0
        try:
            for i in range(self.tokens):
                time.sleep(self.delay)
                n += 1
                yield {"choices": [{"delta": {"content": f" t{i}"}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}
        finally:
            self.produced.append(n)
            with self.lock:
                self.active -= 1


def model_with(llama: ScriptedLlama, max_waiting: int = 8) -> LlamaCppModel:
    model = LlamaCppModel(max_waiting=max_waiting)
    model._llama = llama  # loaded: the scheduling is what is under test
    return model


async def collect(model: LlamaCppModel, query: str) -> list[Any]:
    return [c async for c in model.stream([ChatMessage("user", query)], CompletionParams())]


async def test_one_generation_at_a_time_in_arrival_order() -> None:
    llama = ScriptedLlama()
    model = model_with(llama)
    results = await asyncio.gather(*(collect(model, f"q{i}") for i in range(4)))
    assert llama.max_active == 1
    assert llama.order == ["q0", "q1", "q2", "q3"]
    for chunks in results:
        assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == " t0 t1 t2 t3 t4"
        assert any(isinstance(c, Usage) and c.completion_tokens == 5 for c in chunks)
    model.close()


async def test_full_queue_is_a_clear_503() -> None:
    model = model_with(ScriptedLlama(delay=0.05), max_waiting=1)
    first = asyncio.create_task(collect(model, "a"))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(collect(model, "b"))
    await asyncio.sleep(0.01)
    with pytest.raises(ServiceUnavailable) as info:
        model.check_capacity()
    assert info.value.status == 503
    await asyncio.gather(first, second)
    model.check_capacity()  # free again
    model.close()


async def test_closing_the_stream_stops_within_a_token() -> None:
    llama = ScriptedLlama(tokens=200, delay=0.01)
    model = model_with(llama)
    stream = model.stream([ChatMessage("user", "long")], CompletionParams())
    got = 0
    async for chunk in stream:
        got += isinstance(chunk, TextDelta)
        if got == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(100):
        if llama.produced:
            break
        await asyncio.sleep(0.01)
    assert llama.produced and llama.produced[0] <= 6
    # the next request gets the model
    chunks = await collect(model, "next")
    assert any(isinstance(c, TextDelta) for c in chunks)
    model.close()


def test_model_file_is_pinned() -> None:
    path = smollm2_path()
    assert path.exists()
    verify_sha256(path, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
