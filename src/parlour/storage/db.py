"""Engine and session factory, built once in the lifespan (never a module global)."""

from __future__ import annotations

import errno
import socket
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool


def make_engine(
    url: str, pool_size: int = 10, schema: str = "", timeout: float = 10.0
) -> AsyncEngine:
    """``schema`` (PostgreSQL only) puts parlour's tables in that schema via search_path.
    ``timeout`` bounds connecting, each statement and the wait for a pooled connection."""
    # sessions always end in an explicit commit or rollback: no extra reset on return
    kwargs: dict[str, Any] = {"pool_reset_on_return": None}
    if url.startswith("sqlite"):
        if ":memory:" in url or url.endswith("://"):
            kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(
            pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False, pool_timeout=timeout
        )
        connect: dict[str, Any] = {"timeout": timeout, "command_timeout": timeout}
        if schema:
            connect["server_settings"] = {"search_path": schema}
        kwargs["connect_args"] = connect
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def insert_ignoring_duplicates(session: Any, table: Any) -> Any:
    """INSERT that skips rows colliding with a unique index (a concurrent writer was first)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


_DOWN_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH}


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached right now (stopped, restarting,
    connection lost), as opposed to a statement that failed."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if _is_down(e):
            return True
        todo += [e.__cause__, getattr(e, "orig", None)]
    return False


def _is_down(e: BaseException) -> bool:
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    if isinstance(e, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(e, OSError):  # asyncpg joins one refusal per address into a plain OSError
        return e.errno in _DOWN_ERRNOS or "Connect call failed" in str(e)
    name = type(e).__name__
    module = type(e).__module__
    if module.startswith("asyncpg"):
        # connection failures (SQLSTATE 08…), shutdown / start-up (57P…), too many clients
        state = getattr(e, "sqlstate", "") or ""
        return (
            state.startswith(("08", "57P"))
            or state == "53300"
            or name == "ConnectionDoesNotExistError"
            or (name == "InterfaceError" and "closed" in str(e))
        )
    return False


def error_types() -> tuple[type[Exception], ...]:
    """The exception classes a lost database can surface as (for HTTP error handlers)."""
    import asyncpg

    return (DBAPIError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
