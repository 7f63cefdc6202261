"""Vector stores. ``NumpyStore``: exact cosine search over an in-memory matrix per knowledge
base, loaded through the service's reader and reloaded when the base's index version changes.
``parlour.storage.pgvector.PgVectorStore`` implements the same ``VectorStore`` protocol in
PostgreSQL (HNSW), with a ``NumpyStore`` as its fallback.

Searches are async; the numpy work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# reads every (segment id, vector) of one base: what an in-memory store loads
Reader = Callable[[], Awaitable[tuple[list[str], np.ndarray]]]


def to_blob(row: np.ndarray) -> bytes:
    return np.asarray(row, dtype=np.float32).tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)


class VectorStore(Protocol):
    async def sync(self, kb_id: str, version: int, read: Reader) -> None:
        """Bring ``kb_id``'s index up to ``version`` (the base's ``index_version``)."""
        ...

    async def search(self, kb_id: str, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest segments by cosine, best first."""
        ...

    async def scores(self, kb_id: str, query: np.ndarray, ids: list[str]) -> dict[str, float]:
        """The exact cosine of the given ids (for fusing full-text hits)."""
        ...

    async def drop(self, kb_id: str) -> None: ...

    def nbytes(self) -> int:
        """Bytes held in this process."""
        ...


@dataclass(slots=True)
class _Index:
    version: int
    ids: list[str]
    matrix: np.ndarray
    rows: dict[str, int]


class NumpyStore:
    """Exact search: ``X @ q`` and a partial sort. ~10 ms per query at 100k x 384."""

    def __init__(self) -> None:
        self._indexes: dict[str, _Index] = {}
        self._lock = threading.Lock()

    def version(self, kb_id: str) -> int | None:
        index = self._indexes.get(kb_id)
        return None if index is None else index.version

    def load(self, kb_id: str, version: int, ids: list[str], matrix: np.ndarray) -> None:
        with self._lock:
            rows = {sid: i for i, sid in enumerate(ids)}
            matrix = np.ascontiguousarray(matrix, np.float32)
            self._indexes[kb_id] = _Index(version, ids, matrix, rows)

    def nearest(self, kb_id: str, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Blocking exact top ``k`` (call it from a worker thread)."""
        index = self._indexes.get(kb_id)
        if index is None or not index.ids or k <= 0:
            return []
        if index.matrix.shape[1] != query.shape[0]:
            raise ValueError(
                f"query has {query.shape[0]} dimensions, the index {index.matrix.shape[1]}"
            )
        scores = index.matrix @ query.astype(np.float32)
        k = min(k, len(index.ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(index.ids[i], float(scores[i])) for i in top]

    def cosines(self, kb_id: str, query: np.ndarray, ids: list[str]) -> dict[str, float]:
        index = self._indexes.get(kb_id)
        if index is None:
            return {}
        found = [(sid, index.rows[sid]) for sid in ids if sid in index.rows]
        if not found:
            return {}
        sims = index.matrix[[r for _, r in found]] @ query.astype(np.float32)
        return {sid: float(s) for (sid, _), s in zip(found, sims, strict=True)}

    async def sync(self, kb_id: str, version: int, read: Reader) -> None:
        if self.version(kb_id) == version:
            return
        ids, matrix = await read()
        self.load(kb_id, version, ids, matrix)

    async def search(self, kb_id: str, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        return await asyncio.to_thread(self.nearest, kb_id, query, k)

    async def scores(self, kb_id: str, query: np.ndarray, ids: list[str]) -> dict[str, float]:
        if not ids:
            return {}
        return await asyncio.to_thread(self.cosines, kb_id, query, ids)

    async def drop(self, kb_id: str) -> None:
        with self._lock:
            self._indexes.pop(kb_id, None)

    def nbytes(self) -> int:
        return sum(i.matrix.nbytes for i in self._indexes.values())
