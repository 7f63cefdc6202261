"""Knowledge bases on SQLite and PostgreSQL: add, re-add (incremental), search in every mode."""

from __future__ import annotations

import pytest

from parlour.errors import InvalidParam, NotFound
from parlour.services.knowledge import Knowledge, SearchOptions

PETS = """# Cats

Cats sleep for twelve to sixteen hours a day and are most active at dawn and dusk.

# Dogs

Dogs need a walk at least twice a day; a tired dog is a calm dog.

# Fish

Goldfish can live for more than ten years in a large, filtered tank.
"""

BILLING = """# Invoices

Invoices are emailed on the first day of each month and can be downloaded as PDF.

# Refunds

A refund goes back to the original card within five business days.
"""


async def test_create_list_delete(knowledge: Knowledge) -> None:
    kb = await knowledge.create("pets", description="animals")
    assert kb["name"] == "pets" and kb["embedding_model"] == "local:all-MiniLM-L6-v2"
    with pytest.raises(InvalidParam):
        await knowledge.create("pets")
    await knowledge.add_document("pets", "pets.md", PETS.encode())
    listed = await knowledge.list_bases()
    assert [(k["name"], k["document_count"]) for k in listed] == [("pets", 1)]
    await knowledge.delete(kb["id"])
    assert await knowledge.list_bases() == []
    with pytest.raises(NotFound):
        await knowledge.search(["pets"], "cats")


async def test_readd_is_incremental(knowledge: Knowledge) -> None:
    await knowledge.create("pets", chunk_tokens=40, chunk_overlap=0)
    first = await knowledge.add_document("pets", "pets.md", PETS.encode())
    assert first["result"] == "added" and first["segment_count"] == 3
    assert first["embedded"] == 3 and first["indexing_status"] == "completed"
    again = await knowledge.add_document("pets", "pets.md", PETS.encode())
    assert again["result"] == "unchanged" and again["embedded"] == 0
    changed = PETS.replace("ten years", "twenty years")
    third = await knowledge.add_document("pets", "pets.md", changed.encode())
    assert third["result"] == "updated" and third["embedded"] == 1
    assert third["segment_count"] == 3
    hits = await knowledge.search(["pets"], "how long do goldfish live", SearchOptions(top_k=5))
    assert "twenty years" in hits[0].content
    assert sorted(h.position for h in hits) == [1, 2, 3]
    docs = await knowledge.documents("pets")
    assert len(docs) == 1 and docs[0]["segment_count"] == 3


@pytest.mark.parametrize("method", ["semantic_search", "full_text_search", "hybrid_search"])
async def test_search_modes_find_the_passage(knowledge: Knowledge, method: str) -> None:
    await knowledge.create("pets", chunk_tokens=40, chunk_overlap=0)
    await knowledge.create("billing", chunk_tokens=40, chunk_overlap=0)
    await knowledge.add_document("pets", "pets.md", PETS.encode())
    await knowledge.add_document("billing", "billing.md", BILLING.encode())
    opts = SearchOptions(method=method, top_k=2)
    hits = await knowledge.search(["pets", "billing"], "how often should I walk my dog", opts)
    assert hits[0].title == "Dogs" and hits[0].kb_name == "pets"
    assert hits[0].document_name == "pets.md" and 0 < hits[0].score <= 1
    assert len(hits) <= 2 and hits == sorted(hits, key=lambda h: -h.score)
    hits = await knowledge.search(["pets", "billing"], "refund to my card", opts)
    assert hits[0].title == "Refunds" and hits[0].kb_name == "billing"


async def test_semantic_finds_paraphrase_and_threshold_filters(knowledge: Knowledge) -> None:
    await knowledge.create("billing", chunk_tokens=40, chunk_overlap=0)
    await knowledge.add_document("billing", "billing.md", BILLING.encode())
    hits = await knowledge.search(["billing"], "when do I get my money back?")
    assert hits[0].title == "Refunds"
    strict = await knowledge.search(
        ["billing"], "when do I get my money back?", SearchOptions(score_threshold=0.99)
    )
    assert strict == []


async def test_unsupported_file_is_a_clear_error(knowledge: Knowledge) -> None:
    await knowledge.create("x")
    with pytest.raises(InvalidParam, match="unsupported file type"):
        await knowledge.add_document("x", "photo.png", b"\x89PNG")
