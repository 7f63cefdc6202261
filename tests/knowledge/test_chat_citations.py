"""Chat with knowledge: chunks reach the prompt; citations in message_end, the blocking body
and GET /messages; the retriever_resource toggle hides them. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from parlour.retrieval.embedders import EmbedderRegistry
from tests.api.helpers import set_config
from tests.conftest import Server
from tests.knowledge.test_knowledge_service import BILLING, PETS
from tests.sse import stream_chat


async def with_knowledge(server: Server, embedders: EmbedderRegistry, **extra: Any) -> str:
    knowledge = server.state.knowledge
    knowledge.embedders = embedders  # the session's loaded model
    pets = await knowledge.create("pets", chunk_tokens=40, chunk_overlap=0)
    await knowledge.create("billing", chunk_tokens=40, chunk_overlap=0)
    await knowledge.add_document("pets", "pets.md", PETS.encode())
    await knowledge.add_document("billing", "billing.md", BILLING.encode())
    await set_config(server, dataset_configs={
        "retrieval_model": "multiple", "top_k": 2, "score_threshold": None,
        "datasets": {"datasets": [
            {"dataset": {"enabled": True, "id": pets["id"]}},
            {"dataset": {"enabled": True, "id": "billing"}},  # by name, as an imported app
            {"dataset": {"enabled": True, "id": "missing-kb"}},
        ]},
    }, **extra)
    return str(pets["id"])


def check_citation(resource: dict[str, Any], kb_id: str) -> None:
    assert resource["position"] == 1 and resource["dataset_id"] == kb_id
    assert resource["dataset_name"] == "pets" and resource["document_name"] == "pets.md"
    assert "walk" in resource["content"] and resource["segment_position"] == 2
    assert resource["retriever_from"] == "api" and 0 < resource["score"] <= 1
    for key in ("document_id", "segment_id", "index_node_hash", "data_source_type",
                "hit_count", "word_count", "page", "doc_metadata", "title", "files", "summary"):
        assert key in resource


async def test_blocking_answer_cites_and_prompt_has_context(
    server: Server, embedders: EmbedderRegistry
) -> None:
    kb_id = await with_knowledge(server, embedders)
    r = await server.chat("how often should I walk my dog?", auto_generate_name=False)
    assert r.status_code == 200, r.text
    body = r.json()
    resources = body["metadata"]["retriever_resources"]
    check_citation(resources[0], kb_id)
    assert [x["position"] for x in resources] == list(range(1, len(resources) + 1))
    system = server.fake.calls[-1][0]
    assert system.role == "system" and "<context>" in system.content
    assert "twice a day" in system.content and system.content.endswith("Be brief.")
    listed = await server.client.get(
        "/v1/messages", params={"conversation_id": body["conversation_id"], "user": "alice"},
        headers=server.auth(),
    )
    item = listed.json()["data"][0]["retriever_resources"][0]
    assert item["message_id"] == body["id"] and item["segment_id"] == resources[0]["segment_id"]
    assert item["content"] == resources[0]["content"] and "created_at" in item


async def test_streaming_message_end_cites(server: Server, embedders: EmbedderRegistry) -> None:
    kb_id = await with_knowledge(server, embedders)
    r, frames = await stream_chat(
        server.client, server.auth(), query="how often should I walk my dog?", user="u"
    )
    end = frames[-1]
    assert end["event"] == "message_end"
    check_citation(end["metadata"]["retriever_resources"][0], kb_id)


async def test_toggle_off_hides_citations_but_keeps_context(
    server: Server, embedders: EmbedderRegistry
) -> None:
    await with_knowledge(server, embedders, retriever_resource={"enabled": False})
    body = (await server.chat("how often should I walk my dog?", auto_generate_name=False)).json()
    assert body["metadata"]["retriever_resources"] == []
    assert "twice a day" in server.fake.calls[-1][0].content
