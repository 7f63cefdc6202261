"""Dify's wire format for a chat run: SSE frames, keep-alive pings, and the blocking body.

Frames are ``data: {json}\\n\\n``; ``event: ping\\n\\n`` goes out whenever nothing else was sent
for ``ping_interval`` seconds. Any failure after the stream started ends it with one
terminal ``error`` event. A client that goes away cancels the run (and so the model call).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from parlour.errors import InternalError, ParlourError, ServiceUnavailable
from parlour.pipeline.events import ErrorEvent, Event, MessageDelta, MessageEnd
from parlour.services.chat import ChatRun

PING = b"event: ping\n\n"
SHUTDOWN = "The server is shutting down; the answer was cut short. Please retry."
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class Framer:
    """Encodes one run's events; the envelope of ``message`` frames is built once."""

    def __init__(self, run: ChatRun):
        self.run = run
        head = orjson.dumps(
            {
                "event": "message",
                "conversation_id": run.conversation_id,
                "message_id": run.message_id,
                "created_at": run.created_at,
                "task_id": run.task_id,
                "id": run.message_id,
            }
        )
        self._message_head = b"data: " + head[:-1] + b',"answer":'
        self._message_tail = b',"from_variable_selector":null}\n\n'

    def envelope(self, event: str) -> dict[str, Any]:
        run = self.run
        return {
            "event": event,
            "conversation_id": run.conversation_id,
            "message_id": run.message_id,
            "created_at": run.created_at,
        }

    def encode(self, event: Event) -> bytes:
        if type(event) is MessageDelta:
            return self._message_head + orjson.dumps(event.answer) + self._message_tail
        if type(event) is MessageEnd:
            body = self.envelope("message_end")
            body.update(
                task_id=self.run.task_id,
                id=self.run.message_id,
                metadata=end_metadata(event),
                files=None,
            )
        elif type(event) is ErrorEvent:
            body = self.envelope("error")
            body.update(
                task_id=self.run.task_id,
                status=event.status,
                code=event.code,
                message=event.message,
            )
        else:  # pragma: no cover - every event type is listed above
            raise TypeError(f"unknown event {event!r}")
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def error_frame(self, exc: ParlourError) -> bytes:
        return self.encode(ErrorEvent(exc.code, exc.status, exc.message))


def end_metadata(event: MessageEnd) -> dict[str, Any]:
    return {
        "annotation_reply": event.annotation_reply,
        "retriever_resources": event.retriever_resources,
        "usage": event.usage,
    }


class EventStreamResponse(Response):
    """Streams a run. Pings come from a timer task; a disconnect cancels the run."""

    def __init__(self, run: ChatRun, ping_interval: float = 10.0):
        super().__init__(status_code=200)
        self.run = run
        self.framer = Framer(run)
        self.ping_interval = ping_interval

    async def _start(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        except BaseException:  # never started: the run is settled (its model call cancelled)
            await self.run.close()
            raise

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None
        last_sent = loop.time()
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            main.cancel()

        async def ping() -> None:
            nonlocal last_sent
            while True:
                await asyncio.sleep(last_sent + self.ping_interval - loop.time())
                if loop.time() - last_sent >= self.ping_interval:
                    last_sent = loop.time()
                    await send({"type": "http.response.body", "body": PING, "more_body": True})

        await self._start(send)
        watcher, pinger = loop.create_task(watch()), loop.create_task(ping())
        events = self.run.events
        done = False
        try:
            async for event in events:
                frame = self.framer.encode(event)
                last_sent = loop.time()
                if type(event) is MessageDelta:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                    continue
                # terminal: the client has its whole answer now; the run is saved after
                await send({"type": "http.response.body", "body": frame, "more_body": False})
                done = True
                break
        except asyncio.CancelledError:
            if gone:
                main.uncancel()
                return
            # the server is shutting down past its grace period: say so, then end (the
            # cancel is answered: raised on, it would be logged as the app's failure)
            main.uncancel()
            frame = self.framer.error_frame(ServiceUnavailable(SHUTDOWN))
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": frame, "more_body": False})
            done = True
        except Exception:  # the run already turned its own errors into events
            frame = self.framer.error_frame(InternalError())
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        finally:
            watcher.cancel()
            pinger.cancel()
            await self.run.close()
        if not done:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def collect(run: ChatRun) -> dict[str, Any]:
    """The blocking body: the whole answer in one JSON object (or the run's error raised)."""
    parts: list[str] = []
    end: MessageEnd | None = None
    try:
        async for event in run.events:
            if type(event) is MessageDelta:
                parts.append(event.answer)
            elif type(event) is MessageEnd:
                end = event
            elif type(event) is ErrorEvent:
                raise _as_error(event)
    finally:
        await run.close()
    assert end is not None
    return {
        "event": "message",
        "task_id": run.task_id,
        "id": run.message_id,
        "message_id": run.message_id,
        "conversation_id": run.conversation_id,
        "mode": run.mode,
        "answer": "".join(parts),
        "metadata": end_metadata(end),
        "created_at": run.created_at,
    }


def _as_error(event: ErrorEvent) -> ParlourError:
    err = ParlourError(event.message)
    err.status, err.code = event.status, event.code  # type: ignore[misc]
    return err
