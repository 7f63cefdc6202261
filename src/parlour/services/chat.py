"""POST /chat-messages as a use case: rows first, then the turn, then the outcome saved.

The conversation and message rows are written (and the connection returned) before the first
event goes out, so the ids are in it. A new conversation's prompt needs nothing from those
rows, so its model call starts while they are written (``EarlyCall``); a failed write
cancels it. Whatever happens next — the end, a stop, a client that goes away, a failure —
the answer, usage, latency and status are written in ``finally``: no message stays
``running`` after its stream ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.config import Settings
from parlour.errors import (
    ConversationNotExists,
    InternalError,
    ParlourError,
)
from parlour.pipeline.events import ErrorEvent, Event, MessageDelta, MessageEnd
from parlour.pipeline.prompt import fill
from parlour.pipeline.turn import EarlyStream, TurnInput, TurnState, run_turn
from parlour.providers.base import ChatModel
from parlour.providers.registry import ModelRegistry
from parlour.services.annotations import AnnotationHit, Annotations
from parlour.services.apps import AppContext, Keys, StaleKey
from parlour.services.background import Background
from parlour.services.early import EarlyCall
from parlour.services.end_users import EndUsers
from parlour.services.files import FileRef, Files
from parlour.services.inputs import check_inputs
from parlour.services.knowledge import Knowledge, citations, context_of
from parlour.services.limits import Limiter
from parlour.services.outcomes import Outcomes
from parlour.services.tasks import TaskHandle, TaskRegistry
from parlour.services.titles import TitleWriter, initial_name, title_or_none
from parlour.services.usage import usage_dict
from parlour.services.variables import prompt_values
from parlour.services.watchdog import Watchdog, absorb_stop, next_delta
from parlour.services.workers import Workers
from parlour.storage.hotpath import HotPath, NewTurn, Outcome, Unsaved
from parlour.storage.models import epoch, new_id, utcnow

log = logging.getLogger("parlour.chat")
HISTORY_LIMIT = 50
LAST_SAVE_WAIT = 1.0  # seconds a continued conversation waits for its last answer's save
SAVE_POLL = 0.02


@dataclass(slots=True)
class ChatCommand:
    query: str
    user: str
    inputs: dict[str, Any] = field(default_factory=dict)
    conversation_id: str | None = None
    auto_generate_name: bool = True
    files: list[Any] | None = None  # Dify's `files` entries, as sent
    counted: bool = False  # already counted against the per-user limit (a restarted request)
    response_mode: str = "streaming"


@dataclass(slots=True)
class ChatRun:
    """A started generation: its ids (known before the first token) and its events."""

    task_id: str
    message_id: str
    conversation_id: str
    created_at: int
    mode: str
    events: AsyncIterator[Event]
    handle: TaskHandle | None = None
    abandon: Callable[[], Awaitable[None]] | None = None

    async def close(self) -> None:
        """Close the events; a run whose events were never read is settled here."""
        never_started = self.handle is not None and self.handle.task is None
        await self.events.aclose()  # type: ignore[attr-defined]
        if never_started and self.abandon is not None:
            await self.abandon()


@dataclass(slots=True)
class _Turn:
    """What one running generation needs besides its events."""

    turn: TurnInput
    handle: TaskHandle
    app_id: str
    message_id: str
    conversation_id: str
    started: float
    name_later: bool
    slot: str | None
    saved: asyncio.Future[None]  # done once the outcome is written
    stream: EarlyStream | None = None  # the model call, when it started with the rows
    released: bool = False


class ChatService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        tasks: TaskRegistry,
        end_users: EndUsers,
        background: Background,
        limiter: Limiter,
        workers: Workers,
        hot: HotPath,
        knowledge: Knowledge | None = None,
        files: Files | None = None,
        annotations: Annotations | None = None,
    ):
        self.settings = settings
        self.sessions = sessions
        self.models = models
        self.tasks = tasks
        self.end_users = end_users
        self.background = background
        self.limiter = limiter
        self.workers = workers
        self.hot = hot
        self.knowledge = knowledge
        self.files = files
        self.annotations = annotations
        self.titles = TitleWriter(hot, background.spawn)
        self.outcomes = Outcomes(hot, background.spawn)
        # conversation id -> its last answer being saved (the answer went out before that)
        self._saving: dict[str, asyncio.Future[None]] = {}
        # model name -> its recent first-token time, seconds (a moving average)
        self._first_token: dict[str, float] = {}
        # runs started whose outcome is not written yet (see drain): each run's ``saved``
        self._unsaved: set[asyncio.Future[None]] = set()

    async def drain(self, timeout: float = 10.0) -> None:
        """At shutdown, before the database closes: wait for the runs whose outcome is not
        written yet. The server cancels the requests still open past its grace period just
        before; each writes its row as it ends, and must find the database still there."""
        if not self._unsaved:
            return
        _, left = await asyncio.wait(list(self._unsaved), timeout=timeout)
        if left:
            log.warning("%d answer(s) not saved before shutdown", len(left))

    def active_limit(self, app: AppContext) -> int:
        """Dify's rule: the smallest positive of (the app's limit or the default) and the cap."""
        per_app = app.max_active_requests or self.settings.app_default_active_requests
        positive = [n for n in (per_app, self.settings.app_max_active_requests) if n > 0]
        return min(positive) if positive else 0

    def model_for(self, app: AppContext) -> ChatModel:
        m = app.config.model
        return self.models.get(m.spec, base_url=m.base_url, api_key=m.api_key)

    async def start_keyed(
        self,
        keys: Keys,
        header: str | None,
        read_body: Callable[[], Awaitable[dict[str, Any]]],
        command: Callable[[AppContext, dict[str, Any]], ChatCommand],
    ) -> tuple[ChatCommand, ChatRun]:
        """``start`` for a request's bearer key, from the key row this worker remembers when
        it has one (see services/apps.KeyHints); ``command`` checks the body for an app."""
        app = await keys.remembered(header)
        try:
            body = await read_body()
            known = self.end_users.known(app.id, body.get("user"))
            if app.proof is not None and (body.get("files") or not known):
                # a new end user is a write: make it only for a key read now (files: the user
                # is resolved after them, and may no longer be remembered by then)
                app = await keys.read(header)
            cmd = command(app, body)
            return cmd, await self.start(app, cmd)
        except StaleKey:  # nothing was written: start again from the key's row as it is now
            app = await keys.read(header)
            cmd = command(app, body)
            cmd.counted = True
            return cmd, await self.start(app, cmd)
        except Exception:
            if app.proof is not None:  # a key that no longer holds answers 401/403 first
                await keys.read(header)
            raise

    async def start(self, app: AppContext, cmd: ChatCommand) -> ChatRun:
        model = self.model_for(app)
        check = getattr(model, "check_capacity", None)
        if check is not None:
            check()
        cmd.inputs = check_inputs(
            app.config.user_input_form, cmd.inputs, partial=bool(cmd.conversation_id)
        )
        refs = await self._files(app, cmd)
        end_user_id = await self.end_users.resolve(app.id, cmd.user)
        if not cmd.counted:
            await self.limiter.hit(app.id, end_user_id, self.settings.end_user_rpm)
        slot = await self.limiter.acquire(app.id, self.active_limit(app))
        try:
            return await self._start(app, cmd, model, end_user_id, slot, refs)
        except BaseException:
            await self.limiter.release(app.id, slot)
            raise

    async def _start(
        self,
        app: AppContext,
        cmd: ChatCommand,
        model: ChatModel,
        end_user_id: str,
        slot: str | None,
        refs: list[FileRef] | None = None,
    ) -> ChatRun:
        started = time.perf_counter()
        now = utcnow()
        message_id, task_id = new_id(), new_id()
        conversation_id = cmd.conversation_id or new_id()
        new = NewTurn(
            app_id=app.id,
            end_user_id=end_user_id,
            conversation_id=conversation_id,
            message_id=message_id,
            task_id=task_id,
            model=model.name,
            query=cmd.query,
            inputs=cmd.inputs,
            worker=self.workers.me,
            now=now,
            update_inputs=app.config.allow_inputs_update,
        )
        if not cmd.conversation_id:
            new.mode, new.name = app.mode, initial_name(cmd.query)
            new.introduction = fill(app.config.opening_statement, cmd.inputs)
        turn, early = None, None
        if _prompt_without_rows(app, cmd):
            turn = TurnInput(app.config, model, cmd.query, cmd.inputs, [])
            early = EarlyCall(run_turn(turn), by_task=not self._quick(model))
        written = False
        saving = self._saving.get(conversation_id) if cmd.conversation_id else None
        if saving is not None:  # a client quick to ask again: its history has that answer
            await asyncio.shield(saving)
        try:
            try:
                if early is None:
                    opened = await self._open(new, app)
                else:
                    write = self.hot.open_turn(new, HISTORY_LIMIT, app.proof)
                    opened = await early.open(write, self._wait())
            except asyncio.CancelledError:
                # the write may have gone through (it is over by now): finish the row if so
                written = True
                raise
            if opened is None:
                raise ConversationNotExists()
            written = True
            inputs, history = opened
            if refs and self.files is not None:
                await self.files.attach(app.id, message_id, refs)
            variables: dict[str, Any] = {}
            if app.config.conversation_variables:
                async with self.sessions.begin() as session:
                    variables = await prompt_values(
                        session, app.config, app.id, conversation_id, now
                    )
            handle = await self.tasks.register(task_id, end_user_id)
        except BaseException as exc:
            try:
                if early is not None:  # the model call that started with the write
                    await early.close()
            finally:
                if written:  # the message row exists: never leave it running
                    usage = usage_dict(0, 0, self.settings.price_for(model.name), 0.0)
                    error = f"{type(exc).__name__}: {exc}"
                    await self._finish(message_id, "", usage, "error", error)
            raise
        saved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unsaved.add(saved)
        run = _Turn(
            turn=turn or TurnInput(app.config, model, cmd.query, {**variables, **inputs}, history),
            handle=handle,
            app_id=app.id,
            message_id=message_id,
            conversation_id=conversation_id,
            started=started,
            name_later=not cmd.conversation_id and cmd.auto_generate_name,
            slot=slot,
            saved=saved,
            stream=early.stream if early is not None else None,
        )
        return ChatRun(
            task_id=task_id,
            message_id=message_id,
            conversation_id=conversation_id,
            created_at=epoch(now),
            mode=app.mode,
            events=self._events(run),
            handle=handle,
            abandon=lambda: self._abandon(run),
        )

    async def _open(
        self, new: NewTurn, app: AppContext
    ) -> tuple[dict[str, Any], list[tuple[str, str]]] | None:
        """The turn's rows written. A continued conversation whose last message is still
        running waits for it (up to LAST_SAVE_WAIT): its answer may be out and on its way to
        the database, from another worker (this worker's own saves are waited for exactly,
        see ``_saving``). Past that, the last message is a run of its own, and the turn goes
        on without its answer."""
        new.last_saved = new.name is None
        deadline = time.monotonic() + LAST_SAVE_WAIT
        while True:
            try:
                return await self.hot.open_turn(new, HISTORY_LIMIT, app.proof)
            except Unsaved:
                if time.monotonic() < deadline:
                    await asyncio.sleep(SAVE_POLL)
                else:
                    new.last_saved = False

    def _quick(self, model: ChatModel) -> bool:
        """Whether the model is known to send its first token well within a ping interval:
        then the response may wait for that token (see services/early.py)."""
        if hasattr(model, "check_capacity"):  # a local queue
            return False
        seconds = self._first_token.get(model.name)
        return seconds is not None and seconds < self.settings.ping_interval / 2

    def _timed(self, model: ChatModel, seconds: float) -> None:
        before = self._first_token.get(model.name, seconds)
        self._first_token[model.name] = 0.7 * before + 0.3 * seconds

    def _wait(self) -> float:
        """How long a model may take to its first delta."""
        return min(self.settings.first_token_timeout, self.settings.max_execution_time)

    async def _abandon(self, run: _Turn) -> None:
        """A run whose events were never read: its model call (if started) is cancelled."""
        try:
            if run.stream is not None:
                await run.stream.aclose()
        finally:
            await self._settle(run, "", None, "stopped", "The client went away.")

    async def _files(self, app: AppContext, cmd: ChatCommand) -> list[FileRef]:
        """The message's `files`, checked (recorded with the message, not shown to the model)."""
        if self.files is None or not cmd.files:
            return []
        return await self.files.resolve(app, cmd.files)

    async def _events(self, run: _Turn) -> AsyncIterator[Event]:
        turn, handle, started = run.turn, run.handle, run.started
        handle.task = asyncio.current_task()
        state = turn.state
        parts: list[str] = []
        status, error, first_token = "normal", None, None
        usage: dict[str, Any] | None = None
        stream: EarlyStream | AsyncGenerator[MessageDelta, None] = run.stream or run_turn(turn)
        limits = self.settings
        deadline = started + limits.max_execution_time
        resources: list[dict[str, Any]] = []
        ended = False  # the terminal event went out: a close after it is not a disconnect
        title: asyncio.Task[str | None] | None = None
        watch = Watchdog(handle, deadline - time.perf_counter())
        try:
            hit = await self._annotation(run)
            if hit is not None:  # annotation reply: the canned answer, no model call
                parts.append(hit.answer)
                yield MessageDelta(hit.answer)
                prices = self.settings.price_for(turn.model.name)
                usage = usage_dict(0, 0, prices, time.perf_counter() - started)
                ended = True
                await self._release(run)
                yield MessageEnd(usage=usage, annotation_reply=hit.reply())
                return
            resources = await self._retrieve(run)
            while not handle.stopped:
                wait = limits.token_timeout if parts else limits.first_token_timeout
                event = await next_delta(stream, handle, watch, wait)
                if event is None:
                    break
                if first_token is None:
                    first_token = time.perf_counter() - started
                    self._timed(turn.model, first_token)
                    title = self._title_task(run) if run.name_later else None
                parts.append(event.answer)
                yield event
            if handle.stopped:
                status = "stopped"
                await absorb_stop(handle)
            latency = time.perf_counter() - started
            usage = self._usage(turn, state, parts, latency, first_token)
            ended = True
            await self._release(run)
            yield MessageEnd(usage=usage, retriever_resources=resources)
        except ParlourError as exc:
            status, error = "error", exc.message
            await self._release(run)
            yield ErrorEvent(exc.code, exc.status, exc.message)
        except Exception as exc:
            log.exception("generation failed")
            status, error = "error", f"{type(exc).__name__}: {exc}"
            internal = InternalError()
            await self._release(run)
            yield ErrorEvent(internal.code, internal.status, internal.message)
        except BaseException:  # client disconnect (cancel or close): keep what was generated
            if not ended:
                status = "stopped"
            raise
        finally:
            watch.close()
            await stream.aclose()
            if usage is None:
                latency = time.perf_counter() - started
                usage = self._usage(turn, state, parts, latency, first_token)
            name = _ready_title(title, status)
            await asyncio.shield(self._settle(run, "".join(parts), usage, status, error, name))
            if name is None and run.name_later and status != "error":
                self._title_later(run, title)

    def _title_task(self, run: _Turn) -> asyncio.Task[str | None]:
        """As Dify: a new conversation's title is made while its first answer streams."""
        turn = run.turn
        return self.background.spawn(title_or_none(turn.model, turn.query, run.conversation_id))

    def _title_later(self, run: _Turn, title: asyncio.Task[str | None] | None) -> None:
        """The title was not ready when the answer was saved: store it when it comes (its call
        starts now if the answer ended before its first token)."""
        self.titles.put_when_done(run.conversation_id, title or self._title_task(run))

    async def _annotation(self, run: _Turn) -> AnnotationHit | None:
        """The app's annotation for the query when annotation reply is on and it matches."""
        if self.annotations is None or not run.turn.config.annotation_reply.enabled:
            return None
        try:
            return await self.annotations.match(run.app_id, run.turn.query)
        except Exception:  # reply is an optimisation: the model answers instead
            log.exception("annotation reply failed")
            return None

    async def _retrieve(self, run: _Turn) -> list[dict[str, Any]]:
        """Knowledge for the prompt, before the model is called; the citations to show."""
        config = run.turn.config
        if self.knowledge is None or not config.dataset_configs:
            return []
        hits = await self.knowledge.retrieve(config.dataset_configs, run.turn.query)
        run.turn.context = context_of(hits)
        if not hits or not config.retriever_resource.enabled:
            return []
        resources = citations(hits)
        await self.knowledge.save_citations(run.message_id, resources)
        return resources

    async def _settle(
        self,
        run: _Turn,
        answer: str,
        usage: dict[str, Any] | None,
        status: str,
        error: str | None,
        name: str | None = None,
    ) -> None:
        """Save the outcome (and the conversation's title when it is ready), release the slot
        and forget the task (also for unread runs)."""
        if usage is None:
            usage = self._usage(run.turn, run.turn.state, [], 0.0, None)
        cid, saved = run.conversation_id, run.saved
        self._saving[cid] = saved  # a quick follow-up waits for it
        try:
            await self._finish(run.message_id, answer, usage, status, error, cid, name)
        finally:
            if not saved.done():
                saved.set_result(None)
            self._unsaved.discard(saved)
            if self._saving.get(cid) is saved:
                del self._saving[cid]
            await self._release(run)

    async def _release(self, run: _Turn) -> None:
        """Free the run's slot and task id (once): before its last event goes out, so a
        client that starts its next request at once is not refused."""
        if run.released:
            return
        run.released = True
        await self.tasks.unregister(run.handle)
        await self.limiter.release(run.app_id, run.slot)

    def _usage(
        self,
        turn: TurnInput,
        state: TurnState,
        parts: list[str],
        latency: float,
        first_token: float | None,
    ) -> dict[str, Any]:
        if state.usage is not None:
            prompt, completion = state.usage.prompt_tokens, state.usage.completion_tokens
        else:
            count = turn.model.count_tokens
            prompt = sum(count(m.content) + 4 for m in state.messages)
            completion = count("".join(parts))
        prices = self.settings.price_for(turn.model.name)
        return usage_dict(prompt, completion, prices, latency, first_token)

    async def _finish(
        self,
        message_id: str,
        answer: str,
        usage: dict[str, Any],
        status: str,
        error: str | None,
        conversation_id: str = "",
        name: str | None = None,
    ) -> None:
        outcome = Outcome(message_id, answer, usage, status, error, utcnow(), conversation_id, name)
        await self.outcomes.save(outcome)


def _prompt_without_rows(app: AppContext, cmd: ChatCommand) -> bool:
    """Whether the turn's prompt needs nothing its rows return or later steps add: a new
    conversation (no history) with no conversation variables, annotation reply or knowledge."""
    config = app.config
    return not (
        cmd.conversation_id
        or config.conversation_variables
        or config.annotation_reply.enabled
        or config.dataset_configs
    )


def _ready_title(title: asyncio.Task[str | None] | None, status: str) -> str | None:
    """The title made while the answer streamed, if it is there; an answer that failed gets
    none (its title call is cancelled)."""
    if title is None:
        return None
    if status == "error":
        title.cancel()
        return None
    if not title.done() or title.cancelled():
        return None
    return title.result()
