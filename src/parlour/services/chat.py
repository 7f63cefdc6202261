"""POST /chat-messages as a use case: rows first, then the turn, then the outcome saved.

The conversation and message rows are written (and the connection returned) before the model
is called, so the ids are in the first event. Whatever happens next — the end, a stop, a
client that goes away, a failure — the answer, usage, latency and status are written in
``finally``: no message stays ``running`` after its stream ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.config import Settings
from parlour.errors import ConversationNotExists, InternalError, ParlourError
from parlour.pipeline.events import ErrorEvent, Event, MessageDelta, MessageEnd
from parlour.pipeline.prompt import fill
from parlour.pipeline.turn import TurnInput, TurnState, run_turn
from parlour.providers.base import ChatModel
from parlour.providers.registry import ModelRegistry
from parlour.services.apps import AppContext
from parlour.services.background import Background
from parlour.services.end_users import EndUsers
from parlour.services.inputs import check_inputs
from parlour.services.tasks import TaskHandle, TaskRegistry
from parlour.services.titles import initial_name, name_conversation
from parlour.services.usage import usage_dict
from parlour.services.variables import prompt_values
from parlour.storage.models import Conversation, Message, utcnow

log = logging.getLogger("parlour.chat")
HISTORY_LIMIT = 50


@dataclass(slots=True)
class ChatCommand:
    query: str
    user: str
    inputs: dict[str, Any] = field(default_factory=dict)
    conversation_id: str | None = None
    auto_generate_name: bool = True


@dataclass(slots=True)
class ChatRun:
    """A started generation: its ids (known before the first token) and its events."""

    task_id: str
    message_id: str
    conversation_id: str
    created_at: int
    mode: str
    events: AsyncIterator[Event]


class ChatService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        tasks: TaskRegistry,
        end_users: EndUsers,
        background: Background,
    ):
        self.settings = settings
        self.sessions = sessions
        self.models = models
        self.tasks = tasks
        self.end_users = end_users
        self.background = background

    def model_for(self, app: AppContext) -> ChatModel:
        m = app.config.model
        return self.models.get(m.spec, base_url=m.base_url, api_key=m.api_key)

    async def start(self, app: AppContext, cmd: ChatCommand) -> ChatRun:
        model = self.model_for(app)
        check = getattr(model, "check_capacity", None)
        if check is not None:
            check()
        cmd.inputs = check_inputs(
            app.config.user_input_form, cmd.inputs, partial=bool(cmd.conversation_id)
        )
        end_user_id = await self.end_users.resolve(app.id, cmd.user)
        started = time.perf_counter()
        now = utcnow()
        message_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
        async with self.sessions.begin() as session:
            if cmd.conversation_id:
                conversation_id = cmd.conversation_id
                inputs, history = await self._continue(session, app, end_user_id, cmd, now)
            else:
                conversation_id = str(uuid.uuid4())
                inputs, history = cmd.inputs, []
                await session.execute(
                    insert(Conversation).values(
                        id=conversation_id, app_id=app.id, end_user_id=end_user_id,
                        mode=app.mode, name=initial_name(cmd.query), inputs=inputs,
                        introduction=fill(app.config.opening_statement, inputs),
                        status="normal", created_at=now, updated_at=now,
                    )
                )
            await session.execute(
                insert(Message).values(
                    id=message_id, app_id=app.id, conversation_id=conversation_id,
                    end_user_id=end_user_id, task_id=task_id, model=model.name,
                    query=cmd.query, inputs=inputs, status="running",
                    created_at=now, updated_at=now,
                )
            )
            variables = await prompt_values(session, app.config, app.id, conversation_id, now)
        handle = await self.tasks.register(task_id, end_user_id)
        turn = TurnInput(app.config, model, cmd.query, {**variables, **inputs}, history)
        name_later = not cmd.conversation_id and cmd.auto_generate_name
        events = self._events(turn, handle, message_id, conversation_id, started, name_later)
        return ChatRun(
            task_id=task_id,
            message_id=message_id,
            conversation_id=conversation_id,
            created_at=int(now.timestamp()),
            mode=app.mode,
            events=events,
        )

    async def _continue(
        self, session: AsyncSession, app: AppContext, end_user_id: str, cmd: ChatCommand, now: Any
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        row = (
            await session.execute(
                select(Conversation.inputs).where(
                    Conversation.id == cmd.conversation_id,
                    Conversation.app_id == app.id,
                    Conversation.end_user_id == end_user_id,
                )
            )
        ).first()
        if row is None:
            raise ConversationNotExists()
        stored: dict[str, Any] = row.inputs or {}
        inputs = {**stored, **cmd.inputs} if cmd.inputs else stored
        values: dict[str, Any] = {"updated_at": now}
        if cmd.inputs and app.config.allow_inputs_update:
            values["inputs"] = inputs
        await session.execute(
            update(Conversation).where(Conversation.id == cmd.conversation_id).values(**values)
        )
        rows = await session.execute(
            select(Message.query, Message.answer)
            .where(
                Message.conversation_id == cmd.conversation_id,
                Message.status.in_(("normal", "stopped")),
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(HISTORY_LIMIT)
        )
        history = [(q, a) for q, a in rows.all() if a]
        history.reverse()
        return inputs, history

    async def _events(
        self,
        turn: TurnInput,
        handle: TaskHandle,
        message_id: str,
        conversation_id: str,
        started: float,
        name_later: bool,
    ) -> AsyncIterator[Event]:
        handle.task = asyncio.current_task()
        state = turn.state = TurnState()
        parts: list[str] = []
        status, error, first_token = "normal", None, None
        usage: dict[str, Any] | None = None
        stream = run_turn(turn)
        try:
            while not handle.stopped:
                event = await _next_delta(stream, handle)
                if event is None:
                    break
                if first_token is None:
                    first_token = time.perf_counter() - started
                parts.append(event.answer)
                yield event
            if handle.stopped:
                status = "stopped"
                await _absorb_stop(handle)
            latency = time.perf_counter() - started
            usage = self._usage(turn, state, parts, latency, first_token)
            yield MessageEnd(usage=usage)
        except ParlourError as exc:
            status, error = "error", exc.message
            yield ErrorEvent(exc.code, exc.status, exc.message)
        except Exception as exc:
            log.exception("generation failed")
            status, error = "error", f"{type(exc).__name__}: {exc}"
            internal = InternalError()
            yield ErrorEvent(internal.code, internal.status, internal.message)
        except BaseException:  # client disconnect (cancel or close): keep what was generated
            status = "stopped"
            raise
        finally:
            await stream.aclose()
            if usage is None:
                latency = time.perf_counter() - started
                usage = self._usage(turn, state, parts, latency, first_token)
            await asyncio.shield(
                self._finish(message_id, conversation_id, "".join(parts), usage, status, error)
            )
            await self.tasks.unregister(handle)
            if name_later and status != "error":
                self.background.spawn(
                    name_conversation(self.sessions, turn.model, conversation_id, turn.query)
                )

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
        conversation_id: str,
        answer: str,
        usage: dict[str, Any],
        status: str,
        error: str | None,
    ) -> None:
        now = utcnow()
        try:
            async with self.sessions.begin() as session:
                await session.execute(
                    update(Message)
                    .where(Message.id == message_id)
                    .values(
                        answer=answer,
                        prompt_tokens=usage["prompt_tokens"],
                        completion_tokens=usage["completion_tokens"],
                        prompt_unit_price=usage["prompt_unit_price"],
                        completion_unit_price=usage["completion_unit_price"],
                        price_unit=usage["prompt_price_unit"],
                        total_price=usage["total_price"],
                        currency=usage["currency"],
                        latency=usage["latency"],
                        status=status,
                        error=error,
                        updated_at=now,
                    )
                )
                await session.execute(
                    update(Conversation)
                    .where(Conversation.id == conversation_id)
                    .values(updated_at=now)
                )
        except Exception:
            log.exception("could not save message %s", message_id)


async def _next_delta(
    stream: AsyncIterator[MessageDelta], handle: TaskHandle
) -> MessageDelta | None:
    """The next delta; ``None`` when the turn is over or a stop cancelled the model call."""
    handle.waiting = True
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None
    except asyncio.CancelledError:
        if not handle.cancel_sent:
            raise  # the client went away: not ours to swallow
        handle.cancel_sent = False
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        return None
    finally:
        handle.waiting = False


async def _absorb_stop(handle: TaskHandle) -> None:
    """A stop that asked for a cancel which has not landed yet: take it here, not later."""
    if handle.cancel_sent:
        handle.cancel_sent = False
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]


async def recover_interrupted(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Messages left ``running`` by a crash are marked failed (run at start-up)."""
    async with sessions.begin() as session:
        result = await session.execute(
            update(Message)
            .where(Message.status == "running")
            .values(status="error", error="Interrupted: the server stopped during generation.")
        )
    return int(getattr(result, "rowcount", 0) or 0)
