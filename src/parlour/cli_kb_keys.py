"""``parlour kb keys create | list | revoke``: keys of the Knowledge API (``dataset-…``)."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from parlour.cli_shared import JsonOpt, in_session, show
from parlour.services import dataset_keys

keys_cli = typer.Typer(
    help="Keys of the Knowledge API (dataset-…): every knowledge base, or one.",
    no_args_is_help=True,
)


@keys_cli.command("create")
def kb_keys_create(
    kb: str = typer.Argument(None, help="Knowledge base id or name; omit for every base."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a Knowledge API key (for KB only, when given); the key is printed once."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        key, token = await dataset_keys.create_key(session, kb)
        return {**dataset_keys.key_dict(key), "key": token}

    show([in_session(work)], as_json, "key created (shown once)")


@keys_cli.command("list")
def kb_keys_list(
    kb: str = typer.Argument(None, help="Only the keys of this knowledge base."),
    as_json: bool = JsonOpt,
) -> None:
    """List Knowledge API keys (hints only: keys are stored hashed)."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [dataset_keys.key_dict(k) for k in await dataset_keys.list_keys(session, kb)]

    show(in_session(work), as_json, "knowledge API keys")


@keys_cli.command("revoke")
def kb_keys_revoke(key_id: str, as_json: bool = JsonOpt) -> None:
    """Revoke a Knowledge API key: it stops working at once."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        return dataset_keys.key_dict(await dataset_keys.revoke_key(session, key_id))

    show([in_session(work)], as_json, "key revoked")
