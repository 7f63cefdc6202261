"""A lean HTTP/1.1 client for one model endpoint: kept-alive connections, and a response body
handed over as it arrives.

A streamed chat answer is dozens of small writes from the model server. Through a
general-purpose client every one of them passes its stream reader, its timers and its
wrappers, and each request builds headers, cookies and trace hooks; this client is an
``asyncio.Protocol`` around httptools' parser (the one the server side already uses), and
costs a fraction of that per request and per token. It speaks only what a model endpoint
needs: POST with a body of known length, responses framed by length, chunks or the end of
the connection, over TCP or TLS. No proxies, redirects or cookies.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit

import httptools


class ConnectionFailed(Exception):
    """No response: the connection could not be made, or ended before the response began."""


class BodyCut(Exception):
    """The connection ended before the response's body did."""


class InvalidHeader(ValueError):
    """A request header that cannot go on the wire as it is (a line break, say)."""


class _Surplus(Exception):
    """Bytes after the end of the response: nothing asked for them."""


_BREAKS = frozenset("\r\n\0")

# a slow reader's backlog above which the socket is no longer read
HIGH_WATER = 256 * 1024


class _Connection(asyncio.Protocol):
    """One connection, and the state of the response it is reading."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0  # 0: in use
        self.waiter: asyncio.Future[None] | None = None
        self.begin()

    def begin(self) -> None:
        self.status = 0
        self.keep_alive = False
        self.head_done = False
        self.pieces: list[bytes] = []
        self.complete = False
        self.framed = False  # by Content-Length or chunks; else the body ends with the connection
        self.failure: Exception | None = None
        self.received = False  # any byte of the response
        self.buffered = 0
        self.paused = False

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.idle_since:  # nothing was asked: the connection is out of step
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except _Surplus:  # the response is whole; the connection is out of step
            self.keep_alive = False
            self.close()
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self.failure = ConnectionFailed(f"malformed HTTP response: {exc!r}")
            self.close()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.failure is None:
            if not self.head_done:
                self.failure = ConnectionFailed(str(exc or "the server closed the connection"))
            elif self.framed or exc is not None:  # a reset is no end of the body
                self.failure = BodyCut(str(exc or "the server closed the connection"))
            else:
                self.complete = True
        self._wake()

    # --- httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            raise _Surplus()

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or (
            lowered == b"transfer-encoding" and value.lower().rstrip().endswith(b"chunked")
        ):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status < 200:  # informational (100 Continue …): the real head follows
            return
        self.keep_alive = self.parser.should_keep_alive()  # known once the head is read
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.status < 200:
            self.framed = False
            return
        self.complete = True

    # ---

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until more of the response arrives, or the connection ends."""
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def reusable(self) -> bool:
        return self.complete and not self.closed and self.keep_alive

    def take(self) -> bytes:
        """What arrived of the body since the last take."""
        pieces, self.pieces, self.buffered = self.pieces, [], 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


class Response:
    def __init__(self, connection: _Connection):
        self._conn = connection
        self.status = connection.status

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body, in pieces as they arrive. Raises BodyCut if it ends early."""
        conn = self._conn
        while True:
            if conn.pieces:
                yield conn.take()
            elif conn.complete:
                return
            elif conn.failure is not None:
                raise conn.failure
            else:
                await conn.wait()

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.iter_any()])


class Exchange:
    """``async with pool.post(…) as response``: the connection goes back to the pool if the
    response was read to its end, and is closed otherwise (a stream left early, an error)."""

    def __init__(self, pool: Http1Pool, target: str, headers: dict[str, str], body: bytes):
        self.pool, self.target, self.headers, self.body = pool, target, headers, body
        self._conn: _Connection | None = None

    async def __aenter__(self) -> Response:
        self._conn = await self.pool.send(self.target, self.headers, self.body)
        return Response(self._conn)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self.pool.give_back(conn)


class Http1Pool:
    """Connections to the host of ``url``; idle ones are kept for ``keepalive`` seconds."""

    def __init__(
        self,
        url: str,
        connect_timeout: float,
        keepalive: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if tls else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if tls else None
        default = 443 if tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if self.port == default else f"{host}:{self.port}"
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self._idle: deque[_Connection] = deque()  # the longest idle first
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    def post(self, target: str, headers: dict[str, str], body: bytes) -> Exchange:
        return Exchange(self, target, headers, body)

    async def send(self, target: str, headers: dict[str, str], body: bytes) -> _Connection:
        """Writes the request and waits for the response's head. A kept-alive connection the
        server closed without a byte of answer is replaced once by a new one (a request is
        never sent twice once its answer began)."""
        if self._closed:
            raise ConnectionFailed("the client is closed")
        request = _head(target, self.authority, headers, len(body)) + body
        conn = self._reuse()
        if conn is not None:
            try:
                return await self._exchange(conn, request)
            except ConnectionFailed:
                if conn.received:
                    raise
        return await self._exchange(await self._connect(), request)

    async def _exchange(self, conn: _Connection, request: bytes) -> _Connection:
        conn.begin()
        assert conn.transport is not None
        conn.transport.write(request)
        try:
            while not conn.head_done:
                if conn.failure is not None:
                    raise conn.failure
                await conn.wait()
        except BaseException:
            conn.close()
            raise
        return conn

    def _reuse(self) -> _Connection | None:
        self._expire(time.monotonic())
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                conn.idle_since = 0.0
                return conn
        return None

    def _expire(self, now: float) -> None:
        idle = self._idle
        while idle and (idle[0].closed or now - idle[0].idle_since >= self.keepalive):
            idle.popleft().close()

    def _swept(self) -> None:
        """A quiet pool's idle connections close too (one timer per pool, not per connection)."""
        self._sweep = None
        self._expire(time.monotonic())
        if self._idle:
            wait = self._idle[0].idle_since + self.keepalive - time.monotonic()
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(max(wait, 0.0), self._swept)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            raise  # an OSError too, but a timeout
        except OSError as exc:
            raise ConnectionFailed(str(exc)) from exc
        return conn

    def give_back(self, conn: _Connection) -> None:
        if conn.reusable() and not conn.pieces and not self._closed:
            conn.idle_since = now = time.monotonic()
            self._idle.append(conn)
            self._expire(now)
            if self._sweep is None:
                self._sweep = conn.loop.call_later(self.keepalive, self._swept)
        else:
            conn.close()

    def close(self) -> None:
        """Closes the idle connections; those in use close when their exchange ends."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._idle:
            self._idle.pop().close()


def _head(target: str, authority: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"POST {target} HTTP/1.1", f"Host: {authority}"]
    for name, value in headers.items():
        if _BREAKS.intersection(name + value) or ":" in name:
            raise InvalidHeader(f"a line break or NUL in the request header {name!r}")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {length}\r\n\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidHeader("a request header holds a character HTTP cannot carry") from None
