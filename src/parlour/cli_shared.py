"""What every CLI command group shares: a migrated database for one command, and output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.config import Settings
from parlour.errors import ParlourError
from parlour.services.setup import migrate as run_migrations
from parlour.storage.db import make_engine, make_sessionmaker

T = TypeVar("T")
console = Console()
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")


def on_database(work: Callable[[Settings, async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run ``work`` on the migrated database of the current settings; a ParlourError is
    printed and ends the command with exit code 1."""

    async def go() -> T:
        settings = Settings()
        await run_migrations(settings)
        engine = make_engine(settings.resolved_database_url(), schema=settings.database_schema)
        try:
            return await work(settings, make_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except ParlourError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction on a migrated database."""

    async def in_transaction(_settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> T:
        async with sessions.begin() as session:
            return await work(session)

    return on_database(in_transaction)


def show(rows: list[dict[str, Any]], as_json: bool, title: str, ensure_ascii: bool = True) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=ensure_ascii))
        return
    table = Table(title=title)
    for column in rows[0].keys() if rows else ["(none)"]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
