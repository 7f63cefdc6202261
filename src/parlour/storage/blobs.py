"""Blob storage for uploaded files: a small interface, a local directory behind it.

Every disk operation runs in a worker thread, so a large file never stalls the event loop.
Another backend (S3-compatible object storage for several hosts) implements the same four
methods.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 64 * 1024


class BlobStore(Protocol):
    async def put(self, key: str, source: BinaryIO) -> int:
        """Store ``source`` (read to its end) under ``key``; returns the size in bytes."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The bytes under ``key``, chunk by chunk; ``FileNotFoundError`` when missing."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...


class LocalBlobStore:
    """Files under one directory (``<data_dir>/files``); keys are relative paths."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"invalid blob key {key!r}")
        return path

    async def put(self, key: str, source: BinaryIO) -> int:
        return await asyncio.to_thread(self._put, self._path(key), source)

    @staticmethod
    def _put(path: Path, source: BinaryIO) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        with partial.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
            size = out.tell()
        os.replace(partial, path)
        return size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        # no file handle is held between chunks: a response that is dropped half-way (the
        # client went away) leaves nothing open for the garbage collector to close
        path, offset = self._path(key), 0
        while chunk := await asyncio.to_thread(_read_at, path, offset):
            offset += len(chunk)
            yield chunk

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)


def _read_at(path: Path, offset: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(CHUNK)
