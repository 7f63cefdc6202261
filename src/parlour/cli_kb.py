"""``parlour kb create | add | list | docs | search | rm | keys``: knowledge bases from the
shell."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from parlour.cli_kb_keys import keys_cli
from parlour.cli_shared import JsonOpt, console, on_database, show
from parlour.config import Settings
from parlour.retrieval.embedders import EmbedderRegistry
from parlour.retrieval.parsing import EXTENSIONS
from parlour.retrieval.vectors import NumpyStore
from parlour.services.knowledge import Knowledge, SearchOptions, options_from

T = TypeVar("T")
kb_cli = typer.Typer(help="Knowledge bases: load documents, search them.", no_args_is_help=True)
kb_cli.add_typer(keys_cli, name="keys")


def make_knowledge(settings: Settings, sessions: Any) -> Knowledge:
    embedders = EmbedderRegistry(
        settings.embedding_base_url or settings.openai_base_url,
        settings.embedding_api_key or settings.openai_api_key,
        settings.local_threads,
    )
    return Knowledge(sessions, embedders, NumpyStore(), default_model=settings.embedding_model)


def _run(work: Callable[[Knowledge], Awaitable[T]]) -> T:
    async def with_knowledge(settings: Settings, sessions: Any) -> T:
        return await work(make_knowledge(settings, sessions))

    return on_database(with_knowledge)


def _show(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    show(rows, as_json, title, ensure_ascii=False)


def files_under(paths: list[Path]) -> list[tuple[Path, str]]:
    """(file, document name): a folder's supported files, named relative to the folder."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.suffix.lower() in EXTENSIONS:
                    found.append((f, str(f.relative_to(path))))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise typer.BadParameter(f"{path} does not exist")
    return found


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "embedding_model": row["embedding_model"],
        "search": row["retrieval"].get("search_method"), "chunk_tokens": row["chunk_tokens"],
        "documents": row["document_count"], "words": row["word_count"],
    }


@kb_cli.command("create")
def kb_create(
    name: str,
    description: str = typer.Option("", "--description"),
    embedding_model: str = typer.Option(
        "",
        "--embedding-model",
        help="local:all-MiniLM-L6-v2-q8 (default), local:all-MiniLM-L6-v2 or openai:MODEL",
    ),
    chunk_tokens: int = typer.Option(240, "--chunk-tokens", help="Chunk size in model tokens."),
    overlap: int = typer.Option(40, "--overlap", help="Tokens shared by consecutive chunks."),
    search: str = typer.Option("", "--search", help="semantic | full_text | hybrid"),
    as_json: bool = JsonOpt,
) -> None:
    """Create a knowledge base."""
    row = _run(
        lambda k: k.create(
            name, description=description, embedding_model=embedding_model,
            chunk_tokens=chunk_tokens, chunk_overlap=overlap, search_method=search,
        )
    )
    _show([row if as_json else _brief(row)], as_json, "knowledge base created")


@kb_cli.command("list")
def kb_list(as_json: bool = JsonOpt) -> None:
    """List knowledge bases."""
    rows = _run(lambda k: k.list_bases())
    _show(rows if as_json else [_brief(r) for r in rows], as_json, "knowledge bases")


@kb_cli.command("docs")
def kb_docs(kb: str = typer.Argument(..., help="Knowledge base id or name."),
            as_json: bool = JsonOpt) -> None:
    """List the documents of a knowledge base."""
    _show(_run(lambda k: k.documents(kb)), as_json, "documents")


@kb_cli.command("rm")
def kb_rm(kb: str = typer.Argument(..., help="Knowledge base id or name."),
          as_json: bool = JsonOpt) -> None:
    """Delete a knowledge base with its documents."""
    row = _run(lambda k: k.delete(kb))
    _show([row if as_json else _brief(row)], as_json, "knowledge base deleted")


@kb_cli.command("add")
def kb_add(
    kb: str = typer.Argument(..., help="Knowledge base id or name."),
    paths: list[Path] = typer.Argument(..., help="Files or folders."),  # noqa: B008
    as_json: bool = JsonOpt,
) -> None:
    """Add files (or every supported file under folders). Unchanged files are skipped;
    a changed file re-embeds only its changed chunks."""
    files = files_under(paths)

    async def work(k: Knowledge) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, disable=as_json) as bar:
            overall = bar.add_task("documents", total=len(files))
            chunks = bar.add_task("embedding", total=None)
            for path, name in files:
                bar.update(overall, description=f"documents ({name})")

                def progress(_stage: str, done: int, total: int) -> None:
                    bar.update(chunks, completed=done, total=total or None)

                row = await k.add_document(kb, name, path.read_bytes(), progress=progress)
                out.append({key: row[key] for key in (
                    "name", "result", "segment_count", "embedded", "word_count")})
                bar.advance(overall)
        return out

    _show(_run(work), as_json, "documents")


@kb_cli.command("search")
def kb_search(
    kb: str = typer.Argument(..., help="Knowledge base id or name."),
    query: str = typer.Argument(...),
    top_k: int = typer.Option(0, "--top-k", help="Hits to show (default: the base's)."),
    method: str = typer.Option("", "--mode", help="semantic | full_text | hybrid"),
    threshold: float = typer.Option(None, "--threshold", help="Minimum score."),
    as_json: bool = JsonOpt,
) -> None:
    """Search a knowledge base; shows hits with their scores."""

    async def work(k: Knowledge) -> list[dict[str, Any]]:
        base = await k.get(kb)
        retrieval = dict(base.retrieval)
        if method:
            retrieval["search_method"] = method
        if top_k:
            retrieval["top_k"] = top_k
        if threshold is not None:
            retrieval["score_threshold"] = threshold
        try:
            opts: SearchOptions = options_from(retrieval)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        hits = await k.search([base.id], query, opts)
        return [
            {"score": round(h.score, 4), "document": h.document_name, "position": h.position,
             "title": h.title, "content": h.content if as_json else h.content[:160]}
            for h in hits
        ]

    _show(_run(work), as_json, f"hits for {query!r}")
