"""The lean HTTP/1.1 client, against real sockets: scripted servers that write exact bytes."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from parlour.providers.http1 import BodyCut, ConnectionFailed, Http1Pool, InvalidHeader
from tests.conftest import free_port

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.gone = asyncio.Event()  # a connection the client closed


@asynccontextmanager
async def serving(
    script: Script, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Server]]:
    """A server that reads each request's head and body, then runs ``script`` for it."""
    state = Server()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                state.requests.append(head + await reader.readexactly(length))
                await script(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            state.gone.set()
        except asyncio.CancelledError:
            pass  # the test is over
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=tls)
    try:
        yield f"http://127.0.0.1:{port}/v1", state
    finally:
        server.close()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers)
        await server.wait_closed()


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)


OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def replying(data: bytes, close: bool = False) -> Script:
    """A script that answers every request with ``data`` (then closes, if asked)."""

    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(data)
        if close:
            await w.drain()
            w.close()

    return script


async def fetch(pool: Http1Pool, body: bytes = b"{}") -> tuple[int, list[bytes]]:
    async with pool.post("/v1/chat/completions", {"X-Test": "1"}, body) as response:
        return response.status, [piece async for piece in response.iter_any()]


async def answered_twice(script: Script, body: bytes) -> int:
    """Two requests, each answered with ``body``: how many connections they took."""
    async with serving(script) as (base, server):
        pool = Http1Pool(base, 5)
        for _ in range(2):
            status, pieces = await fetch(pool)
            assert (status, b"".join(pieces)) == (200, body)
        pool.close()
    return server.connections


async def test_request_bytes_and_kept_alive_connection() -> None:
    async with serving(replying(OK_HEAD + b"Content-Length: 5\r\n\r\nhello")) as (base, server):
        pool = Http1Pool(base, 5)
        try:
            assert await fetch(pool, b'{"a":1}') == (200, [b"hello"])
            assert await fetch(pool) == (200, [b"hello"])
        finally:
            pool.close()
    assert server.connections == 1
    first = server.requests[0].split(b"\r\n")
    assert first[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert f"Host: {base.split('/')[2]}".encode() in first
    assert b"X-Test: 1" in first and b"Content-Length: 7" in first
    assert server.requests[0].endswith(b'\r\n\r\n{"a":1}')


async def test_chunks_arrive_before_the_body_ends() -> None:
    go_on = asyncio.Event()

    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"data: one\n\n"))
        await go_on.wait()
        w.write(chunked(b"data: two\n\n") + b"0\r\n\r\n")

    async with serving(script) as (base, server):
        pool = Http1Pool(base, 5)
        try:
            async with pool.post("/v1/chat/completions", {}, b"{}") as response:
                pieces = response.iter_any()
                assert await anext(pieces) == b"data: one\n\n"
                go_on.set()
                assert [p async for p in pieces] == [b"data: two\n\n"]
            status, pieces = await fetch(pool)  # both pieces may come at once this time
            assert (status, b"".join(pieces)) == (200, b"data: one\n\ndata: two\n\n")
        finally:
            pool.close()
    assert server.connections == 1


async def test_body_ended_by_the_connection() -> None:
    reply = replying(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", close=True)
    async with serving(reply) as (base, server):
        pool = Http1Pool(base, 5)
        try:
            status, pieces = await fetch(pool)
            assert (status, b"".join(pieces)) == (200, b"all of it")
            status, pieces = await fetch(pool)  # a new connection: that one ended
            assert b"".join(pieces) == b"all of it"
        finally:
            pool.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        OK_HEAD + b"Content-Length: 100\r\n\r\nonly part",
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"only part"),
    ],
)
async def test_cut_body_is_an_error(answer: bytes) -> None:
    async with serving(replying(answer, close=True)) as (base, _server):
        pool = Http1Pool(base, 5)
        try:
            async with pool.post("/v1/chat/completions", {}, b"{}") as response:
                pieces = response.iter_any()
                assert await anext(pieces) == b"only part"
                with pytest.raises(BodyCut):
                    await anext(pieces)
        finally:
            pool.close()


async def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    reply = replying(OK_HEAD + b"Content-Length: 2\r\n\r\nok", close=True)
    async with serving(reply) as (base, server):
        pool = Http1Pool(base, 5)
        try:
            assert await fetch(pool) == (200, [b"ok"])
            assert await fetch(pool) == (200, [b"ok"])
        finally:
            pool.close()
    assert server.connections == 2


async def test_no_server_and_malformed_answers_fail_to_connect() -> None:
    pool = Http1Pool(f"http://127.0.0.1:{free_port()}/v1", 5)
    with pytest.raises(ConnectionFailed):
        await fetch(pool)

    async with serving(replying(b"SPDY/9 what\r\n\r\n")) as (base, _server):
        pool = Http1Pool(base, 5)
        with pytest.raises(ConnectionFailed):
            await fetch(pool)
        pool.close()


async def test_a_stream_left_early_closes_its_connection() -> None:
    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"first"))
        await w.drain()
        await _r.read(1)  # until the client goes

    async with serving(script) as (base, server):
        pool = Http1Pool(base, 5)
        async with pool.post("/v1/chat/completions", {}, b"{}") as response:
            async for _piece in response.iter_any():
                break
        await asyncio.wait_for(server.gone.wait(), 2)
        assert not pool._idle
        pool.close()


async def test_a_cancelled_wait_for_the_head_closes_the_connection() -> None:
    async def script(r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await r.read(1)  # never answers

    async with serving(script) as (base, server):
        pool = Http1Pool(base, 5)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await fetch(pool)
        await asyncio.wait_for(server.gone.wait(), 2)
        assert not pool._idle


def test_on_uvloop() -> None:
    """The server's loop: its transports are not asyncio's classes."""
    import uvloop

    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"a", b"b"))
        w.write(b"0\r\n\r\n")

    assert uvloop.run(answered_twice(script, b"ab")) == 1  # on one connection


async def test_tls_checks_the_certificate(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)

    reply = replying(OK_HEAD + b"Content-Length: 6\r\n\r\nsecret")
    async with serving(reply, served) as (base, _server):
        url = base.replace("http://127.0.0.1", "https://localhost")
        trusted = Http1Pool(url, 5, ssl_context=ssl.create_default_context(cafile=cert))
        assert await fetch(trusted) == (200, [b"secret"])
        trusted.close()
        with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await fetch(Http1Pool(url, 5))  # the system's CAs do not know it


async def test_bytes_sent_to_an_idle_connection_retire_it() -> None:
    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(OK_HEAD + b"Content-Length: 2\r\n\r\nok")
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")  # asked by no one

    async with serving(script) as (base, server):
        pool = Http1Pool(base, 5)
        assert await fetch(pool) == (200, [b"ok"])
        await asyncio.sleep(0.2)
        assert await fetch(pool) == (200, [b"ok"])  # not "stale"
        pool.close()
    assert server.connections == 2


async def test_informational_heads_are_skipped() -> None:
    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await w.drain()
        await asyncio.sleep(0.02)
        w.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        w.write(OK_HEAD + b"Content-Length: 6\r\n\r\nanswer")

    assert await answered_twice(script, b"answer") == 1


async def test_bytes_after_the_response_in_the_same_read_retire_the_connection() -> None:
    reply = replying(OK_HEAD + b"Content-Length: 2\r\n\r\nok" + b"HTTP/1.1 200 OK\r\nContent-Le")
    async with serving(reply) as (base, server):
        pool = Http1Pool(base, 5)
        assert await fetch(pool) == (200, [b"ok"])
        assert await fetch(pool) == (200, [b"ok"])
        pool.close()
    assert server.connections == 2 and len(server.requests) == 2


async def test_a_request_whose_answer_began_is_not_sent_again() -> None:
    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if len(server.requests) == 1:
            w.write(OK_HEAD + b"Content-Length: 2\r\n\r\nok")
        else:
            w.write(b"HTTP/1.1 2")  # half a status line, then gone
            await w.drain()
            w.close()

    async with serving(script) as (base, server):
        pool = Http1Pool(base, 5)
        assert await fetch(pool) == (200, [b"ok"])
        with pytest.raises(ConnectionFailed):
            await fetch(pool)
        pool.close()
    assert len(server.requests) == 2


async def test_a_reset_is_not_the_end_of_a_body_framed_by_the_connection() -> None:
    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart of it")
        await w.drain()
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()  # RST

    async with serving(script) as (base, _server):
        pool = Http1Pool(base, 5)
        async with pool.post("/v1/chat/completions", {}, b"{}") as response:
            with pytest.raises(BodyCut):
                await response.read()


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer k\r\nX-Evil: 1"}, {"X-A": "k\n"}, {"X-A": "k\0"},
     {"X: Y": "1"}, {"X-A": "ключ"}],
)  # fmt: skip
async def test_headers_that_would_break_the_request_are_refused(headers: dict[str, str]) -> None:
    async with serving(replying(OK_HEAD + b"Content-Length: 2\r\n\r\nok")) as (base, server):
        pool = Http1Pool(base, 5)
        with pytest.raises(InvalidHeader):
            async with pool.post("/v1/chat/completions", headers, b"{}"):
                pass
    assert server.requests == []


async def test_a_closed_pool_keeps_no_connection() -> None:
    go_on = asyncio.Event()

    async def script(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await go_on.wait()
        w.write(OK_HEAD + b"Content-Length: 2\r\n\r\nok")

    async with serving(script) as (base, server):
        pool = Http1Pool(base, 5)
        running = asyncio.create_task(fetch(pool))
        await asyncio.sleep(0.05)
        pool.close()  # while a request is out
        go_on.set()
        assert await running == (200, [b"ok"])
        await asyncio.wait_for(server.gone.wait(), 2)
        assert not pool._idle
        with pytest.raises(ConnectionFailed):
            await fetch(pool)


async def test_idle_connections_expire() -> None:
    async with serving(replying(OK_HEAD + b"Content-Length: 2\r\n\r\nok")) as (base, server):
        pool = Http1Pool(base, 5, keepalive=0.1)
        await asyncio.gather(fetch(pool), fetch(pool), fetch(pool))
        assert len(pool._idle) == 3
        await asyncio.sleep(0.15)
        assert await fetch(pool) == (200, [b"ok"])  # on a new connection; the old ones close
        assert len(pool._idle) == 1
        await asyncio.sleep(0.25)  # and with nothing more asked, the last one too
        assert not pool._idle
        pool.close()
    assert server.connections == 4


async def test_a_slow_reader_gets_the_whole_of_a_large_body() -> None:
    body = bytes(range(256)) * 8192  # 2 MiB

    reply = replying(OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    async with serving(reply) as (base, _server):
        pool = Http1Pool(base, 5)
        async with pool.post("/v1/chat/completions", {}, b"{}") as response:
            await asyncio.sleep(0.1)  # the socket is paused meanwhile
            got = [piece async for piece in response.iter_any()]
        pool.close()
    assert b"".join(got) == body


async def test_connect_timeout_is_a_timeout() -> None:
    async def script(_r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        raise AssertionError("no request gets through")

    async with serving(script) as (base, _server):  # plain TCP: the TLS handshake never ends
        pool = Http1Pool(base.replace("http:", "https:"), 0.2)
        with pytest.raises(TimeoutError):
            await fetch(pool)
