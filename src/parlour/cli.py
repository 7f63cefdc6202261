"""``parlour serve | migrate | apps … | keys …``: the operator's side."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from parlour.cli_kb import kb_cli
from parlour.cli_shared import JsonOpt, console, in_session, show
from parlour.config import Settings
from parlour.errors import ParlourError
from parlour.services import appdef
from parlour.services import apps as apps_service
from parlour.services.setup import migrate as run_migrations
from parlour.services.setup import prepare

cli = typer.Typer(help="parlour: a Dify-compatible chat-app server.", no_args_is_help=True)
apps_cli = typer.Typer(
    help="Create, list, import, export and update chat apps.", no_args_is_help=True
)
keys_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
cli.add_typer(apps_cli, name="apps")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(kb_cli, name="kb")
err_console = Console(stderr=True)
FileArg = typer.Argument(..., exists=True, dir_okay=False, help="Dify DSL or parlour app YAML.")


@cli.command()
def serve(
    host: str = typer.Option(None, help="Bind address (PARLOUR_HOST)."),
    port: int = typer.Option(None, help="Port (PARLOUR_PORT)."),
    workers: int = typer.Option(None, help="Worker processes (PARLOUR_WORKERS)."),
) -> None:
    """Migrate, create the demo app on first start, and serve the API."""
    from parlour.serving import serve as run_server

    settings = Settings()
    prepared = asyncio.run(prepare(settings))
    if prepared and prepared.key:
        console.print(
            f"[bold green]Demo app created.[/bold green] API key (shown once): "
            f"[bold]{prepared.key}[/bold]"
        )
    elif prepared:
        console.print("Using the existing app(s); `parlour keys create demo` makes a new key.")
    run_server(
        settings, host or settings.host, port or settings.port, workers or settings.workers
    )


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    asyncio.run(run_migrations(Settings()))
    console.print("Database is up to date.")


@apps_cli.command("create")
def apps_create(
    name: str,
    model: str = typer.Option(None, "--model", help="PROVIDER:MODEL, e.g. openai:gpt-4o-mini"),
    prompt: str = typer.Option("", "--prompt", help="System prompt; {{var}} come from inputs."),
    description: str = typer.Option("", "--description"),
    as_json: bool = JsonOpt,
) -> None:
    """Create a chat app."""
    spec = model or Settings().default_model

    async def work(session: AsyncSession) -> dict[str, Any]:
        app = await apps_service.create_app(
            session, name, model=spec, prompt=prompt, description=description
        )
        return apps_service.app_dict(app)

    show([in_session(work)], as_json, "app created")


@apps_cli.command("list")
def apps_list(as_json: bool = JsonOpt) -> None:
    """List apps."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [apps_service.app_dict(a) for a in await apps_service.list_apps(session)]

    show(in_session(work), as_json, "apps")


@keys_cli.command("create")
def keys_create(
    app: str = typer.Argument(..., help="App id or name."), as_json: bool = JsonOpt
) -> None:
    """Create an API key for APP; the key is printed once."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await apps_service.find_app(session, app)
        key, token = await apps_service.create_key(session, found)
        return {**apps_service.key_dict(key), "key": token}

    show([in_session(work)], as_json, "key created (shown once)")


@keys_cli.command("list")
def keys_list(
    app: str = typer.Argument(..., help="App id or name."), as_json: bool = JsonOpt
) -> None:
    """List the keys of APP (hints only: keys are stored hashed)."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        found = await apps_service.find_app(session, app)
        return [apps_service.key_dict(k) for k in await apps_service.list_keys(session, found)]

    show(in_session(work), as_json, "keys")


@keys_cli.command("revoke")
def keys_revoke(key_id: str, as_json: bool = JsonOpt) -> None:
    """Revoke a key: it stops working at once."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        return apps_service.key_dict(await apps_service.revoke_key(session, key_id))

    show([in_session(work)], as_json, "key revoked")


def _definition(file: Path) -> appdef.AppDefinition:
    try:
        return appdef.load(file.read_text(encoding="utf-8"))
    except ParlourError as exc:
        console.print(f"[red]error:[/red] {file}: {exc.message}")
        raise typer.Exit(1) from None


def _report(row: dict[str, Any], warnings: list[str], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps([{**row, "warnings": warnings}], indent=2))
        return
    show([row], False, title)
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}")


@apps_cli.command("import")
def apps_import(
    file: Path = FileArg,
    key: bool = typer.Option(False, "--key", help="Also create an API key (printed once)."),
    as_json: bool = JsonOpt,
) -> None:
    """Create an app from a Dify DSL export (chat / agent-chat) or a parlour app file."""
    definition = _definition(file)

    async def work(session: AsyncSession) -> dict[str, Any]:
        await appdef.attach_datasets(session, definition)
        app = await appdef.create_from(session, definition)
        row = apps_service.app_dict(app)
        if key:
            row["key"] = (await apps_service.create_key(session, app))[1]
        return row

    _report(in_session(work), definition.warnings, as_json, "app imported")


@apps_cli.command("update")
def apps_update(
    app: str = typer.Argument(..., help="App id or name."),
    file: Path = FileArg,
    as_json: bool = JsonOpt,
) -> None:
    """Replace APP's definition; running servers use it from their next request."""
    definition = _definition(file)

    async def work(session: AsyncSession) -> dict[str, Any]:
        await appdef.attach_datasets(session, definition)
        return apps_service.app_dict(await appdef.update_from(session, app, definition))

    _report(in_session(work), definition.warnings, as_json, "app updated")


@apps_cli.command("export")
def apps_export(
    app: str = typer.Argument(..., help="App id or name."),
    fmt: str = typer.Option("parlour", "--format", help="parlour or dify (DSL)."),
) -> None:
    """Print APP's definition as YAML (the model api_key is left out)."""

    async def work(session: AsyncSession) -> str:
        return appdef.export(await apps_service.find_app(session, app), fmt)

    typer.echo(in_session(work), nl=False)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
