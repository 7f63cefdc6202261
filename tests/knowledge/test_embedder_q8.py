"""The q8 MiniLM: derived from the pinned package file, cached by source and runtime versions,
checked by sha256 before use, and close to the packaged model's vectors; knowledge bases keep
the model they were made with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest

from parlour.config import Settings
from parlour.retrieval.embedders import (
    DEFAULT_EMBEDDER,
    MINILM,
    MINILM_MODEL,
    MINILM_Q8,
    Q8_SHA256,
    EmbedderRegistry,
    MiniLMEmbedder,
    embed_batched,
    q8_versions,
    quantised_minilm,
    sha256_file,
)

SENTENCES = [
    "How do I reset my password?",
    "Cats sleep for twelve to sixteen hours a day and are most active at dawn and dusk.",
    "A refund goes back to the original card within five business days.",
    "VACUUM reclaims storage occupied by dead tuples; ANALYZE collects statistics.",
    "Invoices are emailed on the first day of each month and can be downloaded as PDF.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def test_derived_once_into_a_keyed_cache_and_checked(cache: Path) -> None:
    path = quantised_minilm(cache)
    ort_version, onnx_version = q8_versions()
    folder = path.parent
    assert folder.parent == cache / "all-MiniLM-L6-v2-q8"
    assert MINILM_MODEL[2][:16] in folder.name and f"ort{ort_version}" in folder.name
    assert f"onnx{onnx_version}" in folder.name
    recorded = (folder / "model.onnx.sha256").read_text().split()[0]
    assert sha256_file(path) == recorded
    assert Q8_SHA256.get((ort_version, onnx_version), recorded) == recorded

    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("MatMulInteger") == 36  # every MatMul with weights; attention stays float
    assert "DynamicQuantizeLinear" in ops

    made = path.stat().st_mtime_ns
    assert quantised_minilm(cache) == path and path.stat().st_mtime_ns == made  # cached

    with path.open("ab") as f:  # a damaged file is not loaded: it is made again
        f.write(b"\0")
    assert quantised_minilm(cache) == path
    assert sha256_file(path) == recorded


def test_derivation_is_deterministic(cache: Path, tmp_path: Path) -> None:
    assert sha256_file(quantised_minilm(tmp_path)) == sha256_file(quantised_minilm(cache))


def test_vectors_close_to_the_packaged_model(cache: Path, embedders: EmbedderRegistry) -> None:
    q8 = MiniLMEmbedder(quantised=True, cache=cache)
    assert q8.name == MINILM_Q8 and q8.dim == 384
    exact = embedders.get(MINILM).embed(SENTENCES)
    near = q8.embed(SENTENCES)
    assert near.shape == exact.shape and near.dtype == np.float32
    assert np.allclose(np.linalg.norm(near, axis=1), 1.0, atol=1e-5)
    cosine = (exact * near).sum(axis=1)
    assert cosine.min() > 0.9, cosine
    # the same sentence is the nearest for each query, with either model
    queries = ["forgot my login password", "when is the money returned", "cleaning up old rows"]
    for model_rows, query_rows in (
        (exact, embedders.get(MINILM).embed(queries)),
        (near, q8.embed(queries)),
    ):
        assert list((query_rows @ model_rows.T).argmax(axis=1)) == [0, 2, 3]


def test_specs_resolve_to_their_own_models(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New bases get the q8 model; a base that stored the packaged model's name keeps it."""
    monkeypatch.setenv("PARLOUR_MODEL_CACHE", str(cache))
    assert Settings().embedding_model == DEFAULT_EMBEDDER == MINILM_Q8
    registry = EmbedderRegistry()
    assert registry.get(MINILM_Q8).name == MINILM_Q8
    assert registry.get(MINILM).name == MINILM
    assert registry.get(MINILM_Q8) is registry.get(MINILM_Q8)


class Recorder:
    """An embedder that records how many texts each call got."""

    name, dim, max_tokens = "test:recorder", 2, 254

    def __init__(self, batch: int | None = None):
        self.calls: list[int] = []
        if batch is not None:
            self.batch = batch

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return np.ones((len(texts), self.dim), np.float32)

    def spans(self, text: str) -> list[tuple[int, int]]:
        return []


async def test_embed_batched_uses_the_embedders_batch() -> None:
    texts = [f"text {i}" for i in range(20)]
    one = Recorder(batch=1)
    assert (await embed_batched(one, texts)).shape == (20, 2)
    assert one.calls == [1] * 20
    default = Recorder()
    await embed_batched(default, texts)
    assert default.calls == [16, 4]
    assert MiniLMEmbedder.batch == 1
