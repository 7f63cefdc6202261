"""The Knowledge API's process rules (applied, stored, shown), update-by-text and
update-by-file, a document's detail, and PATCH /datasets/{id}. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from parlour.retrieval.embedders import EmbedderRegistry
from tests.conftest import Server
from tests.knowledge.dataset_helpers import Api, check_error, new_dataset_key
from tests.knowledge.test_knowledge_service import BILLING, PETS

PARTS = (
    "Cats sleep all day.\n---\nDogs need walks.\n---\n\n---\nFish   swim, see https://fish.example"
)


def custom(separator: str = "\\n---\\n", max_tokens: int = 100, **seg: Any) -> dict[str, Any]:
    return {
        "mode": "custom",
        "rules": {
            "pre_processing_rules": [
                {"id": "remove_extra_spaces", "enabled": True},
                {"id": "remove_urls_emails", "enabled": True},
            ],
            "segmentation": {"separator": separator, "max_tokens": max_tokens, **seg},
        },
    }


@pytest.fixture
async def api(server: Server, embedders: EmbedderRegistry) -> Api:
    server.state.knowledge.embedders = embedders  # the session's loaded model
    return Api(server, await new_dataset_key(server.database))


async def contents(api: Api, kb: str, doc: str) -> list[str]:
    r = await api.get(f"/datasets/{kb}/documents/{doc}/segments")
    assert r.status_code == 200, r.text
    return [s["content"] for s in r.json()["data"]]


async def patch(api: Api, kb: str, body: Any) -> httpx.Response:
    return await api.server.client.patch(f"/v1/datasets/{kb}", json=body, headers=api.headers)


async def test_a_custom_rule_is_applied_stored_and_shown(api: Api) -> None:
    kb = await api.dataset("pets")
    r = await api.post(
        f"/datasets/{kb}/document/create-by-text",
        {"name": "pets", "text": PARTS, "process_rule": custom(chunk_overlap=0)},
    )
    assert r.status_code == 200, r.text
    doc = r.json()["document"]
    assert doc["dataset_process_rule_id"]
    assert (await api.wait(kb, r.json()["batch"]))["indexing_status"] == "completed"
    assert await contents(api, kb, doc["id"]) == [
        "Cats sleep all day.",
        "Dogs need walks.",
        "Fish swim, see",
    ]
    detail = (await api.get(f"/datasets/{kb}/documents/{doc['id']}")).json()
    rule = detail["document_process_rule"]
    assert rule["id"] == detail["dataset_process_rule_id"] == doc["dataset_process_rule_id"]
    assert rule["dataset_id"] == kb and rule["mode"] == "custom"
    assert rule["rules"]["segmentation"] == {
        "separator": "\\n---\\n",
        "max_tokens": 100,
        "chunk_overlap": 0,
    }
    assert detail["dataset_process_rule"] == rule  # the base's latest
    assert detail["segment_count"] == 3 and detail["indexing_status"] == "completed"
    assert isinstance(detail["completed_at"], int) and detail["indexing_latency"] >= 0
    only = (await api.get(f"/datasets/{kb}/documents/{doc['id']}", metadata="only")).json()
    assert only == {"id": doc["id"], "doc_type": None, "doc_metadata": []}
    without = (await api.get(f"/datasets/{kb}/documents/{doc['id']}", metadata="without")).json()
    assert "doc_metadata" not in without and without["segment_count"] == 3
    check_error(
        await api.get(f"/datasets/{kb}/documents/{doc['id']}", metadata="some"),
        400,
        "invalid_param",
        "Invalid metadata value: some",
    )


async def test_automatic_shows_the_bases_settings_and_files_take_rules(api: Api) -> None:
    kb = await api.dataset("help")
    created = await api.add_text(kb, "billing", BILLING)  # mode automatic
    detail = (await api.get(f"/datasets/{kb}/documents/{created['document']['id']}")).json()
    rule = detail["document_process_rule"]
    assert rule["mode"] == "automatic"
    assert rule["rules"]["segmentation"] == {
        "separator": "\\n\\n",
        "max_tokens": 240,
        "chunk_overlap": 40,
    }
    r = await api.post(
        f"/datasets/{kb}/document/create-by-file",
        files={"file": ("pets.txt", PARTS.encode())},
        data={"data": json.dumps({"process_rule": custom()})},
    )
    assert r.status_code == 200, r.text
    await api.wait(kb, r.json()["batch"])
    assert len(await contents(api, kb, r.json()["document"]["id"])) == 3


async def test_max_tokens_is_capped_at_what_the_embedder_takes_whole(api: Api) -> None:
    kb = await api.dataset("long")
    text = " ".join(f"word{i}" for i in range(700))
    r = await api.post(
        f"/datasets/{kb}/document/create-by-text",
        {"name": "long", "text": text, "process_rule": custom(max_tokens=1000)},
    )
    assert r.status_code == 200, r.text
    await api.wait(kb, r.json()["batch"])
    segments = await api.get(f"/datasets/{kb}/documents/{r.json()['document']['id']}/segments")
    tokens = [s["tokens"] for s in segments.json()["data"]]
    assert len(tokens) > 1 and max(tokens) <= 254  # MiniLM: 256 less [CLS] and [SEP]


async def test_bad_rules_are_400_and_create_nothing(api: Api) -> None:
    kb = await api.dataset("pets")
    for rule, message in [
        ("custom", "Process rule is invalid"),
        ({"mode": "fancy"}, "Process rule mode is invalid"),
        ({"mode": "custom"}, "Process rule rules is required"),
        (custom(max_tokens=10), "Custom segment length should be between 50 and 4000."),
        (custom(separator=""), "Process rule segmentation separator is required"),
    ]:
        r = await api.post(
            f"/datasets/{kb}/document/create-by-text",
            {"name": "pets", "text": PETS, "process_rule": rule},
        )
        check_error(r, 400, "invalid_param", message)
    r = await api.post(
        f"/datasets/{kb}/document/create-by-file",
        files={"file": ("a.txt", b"x")},
        data={"data": '{"process_rule": {"mode": "custom", "rules": {}}}'},
    )
    check_error(r, 400, "invalid_param", "Process rule rules is required")
    assert (await api.get(f"/datasets/{kb}/documents")).json()["total"] == 0


async def test_update_by_text_replaces_content_and_name_keeping_id_batch_and_rule(
    api: Api,
) -> None:
    kb = await api.dataset("pets")
    r = await api.post(
        f"/datasets/{kb}/document/create-by-text",
        {"name": "pets", "text": PARTS, "process_rule": custom()},
    )
    first = r.json()
    doc = first["document"]["id"]
    await api.wait(kb, first["batch"])
    route = f"/datasets/{kb}/documents/{doc}/update-by-text"
    r = await api.post(route, {"name": "animals", "text": "Owls hunt.\n---\nBees dance."})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"document", "batch"} and body["batch"] == first["batch"]
    assert body["document"]["id"] == doc and body["document"]["name"] == "animals"
    assert body["document"]["indexing_status"] in ("waiting", "indexing")
    assert (await api.wait(kb, body["batch"]))["indexing_status"] == "completed"
    assert await contents(api, kb, doc) == ["Owls hunt.", "Bees dance."]  # the stored rule
    listed = (await api.get(f"/datasets/{kb}/documents")).json()
    assert [d["name"] for d in listed["data"]] == ["animals"]
    r = await api.post(
        f"/datasets/{kb}/documents/{doc}/update_by_text",
        {"text": "Owls hunt. Bees dance.", "process_rule": {"mode": "automatic"}},
    )
    assert r.status_code == 200, r.text
    await api.wait(kb, r.json()["batch"])
    assert await contents(api, kb, doc) == ["Owls hunt. Bees dance."]
    renamed = await api.post(route, {"name": "wildlife"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["document"]["name"] == "wildlife"
    assert renamed.json()["document"]["indexing_status"] == "completed"


async def test_update_errors(api: Api) -> None:
    kb = await api.dataset("pets")
    pets = await api.add_text(kb, "pets", PETS)
    billing = await api.add_text(kb, "billing", BILLING)
    for created in (pets, billing):
        await api.wait(kb, created["batch"])
    doc = pets["document"]["id"]
    route = f"/datasets/{kb}/documents/{doc}/update-by-text"
    check_error(
        await api.post(route, {}), 400, "invalid_param", "Data source or Process rule is required"
    )
    check_error(await api.post(route, {"process_rule": custom()}), 400, "invalid_param")
    check_error(await api.post(route, {"name": "billing"}), 400, "invalid_param")
    check_error(await api.post(route, {"name": "billing", "text": "x"}), 400, "invalid_param")
    check_error(
        await api.post(route, {"text": "x", "process_rule": {"mode": "odd"}}),
        400,
        "invalid_param",
        "Process rule mode is invalid",
    )
    missing = "00000000-0000-4000-8000-000000000000"
    check_error(
        await api.post(f"/datasets/{kb}/documents/{missing}/update-by-text", {"text": "x"}),
        404,
        "not_found",
        "Document not found.",
    )
    check_error(
        await api.post(f"/datasets/{missing}/documents/{doc}/update-by-text", {"text": "x"}),
        404,
        "not_found",
        "Dataset not found.",
    )
    file_route = f"/datasets/{kb}/documents/{doc}/update-by-file"
    check_error(
        await api.post(file_route, files={"file": ("tool.exe", b"MZ")}),
        415,
        "unsupported_file_type",
    )
    r = await api.post(route, {"text": "Dogs nap."})
    assert r.status_code == 200, r.text
    await api.wait(kb, r.json()["batch"])
    assert "Dogs nap." in await contents(api, kb, doc)


async def test_update_by_file(api: Api) -> None:
    kb = await api.dataset("help")
    created = await api.add_text(kb, "hours", "We open at nine.")
    await api.wait(kb, created["batch"])
    doc = created["document"]["id"]
    r = await api.post(
        f"/datasets/{kb}/documents/{doc}/update-by-file",
        files={"file": ("hours.md", b"# Hours\n\nWe open at ten on Sundays.")},
        data={"data": '{"indexing_technique": "high_quality"}'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["document"]["id"] == doc and r.json()["document"]["name"] == "hours.md"
    assert (await api.wait(kb, r.json()["batch"]))["indexing_status"] == "completed"
    assert await contents(api, kb, doc) == ["We open at ten on Sundays."]
    r = await api.post(f"/datasets/{kb}/retrieve", {"query": "when do you open on sunday"})
    assert r.json()["records"][0]["segment"]["document"]["name"] == "hours.md"


async def test_patch_dataset(api: Api) -> None:
    kb = await api.dataset("pets")
    await api.dataset("billing")
    r = await patch(
        api,
        kb,
        {
            "name": "animals",
            "description": "furry and not",
            "permission": "all_team_members",
            "retrieval_model": {
                "search_method": "hybrid_search",
                "top_k": 2,
                "score_threshold_enabled": True,
                "score_threshold": 0.2,
                "reranking_enable": False,
            },
            "partial_member_list": [],
        },
    )
    assert r.status_code == 200, r.text
    ds = r.json()
    assert (ds["id"], ds["name"], ds["description"]) == (kb, "animals", "furry and not")
    assert ds["permission"] == "all_team_members"
    rm = ds["retrieval_model_dict"]
    assert (rm["search_method"], rm["top_k"], rm["score_threshold"]) == ("hybrid_search", 2, 0.2)
    assert rm["score_threshold_enabled"] is True
    assert (await api.get(f"/datasets/{kb}")).json()["name"] == "animals"
    r = await patch(api, kb, {"indexing_technique": "economy"})
    assert r.json()["indexing_technique"] == "economy"
    assert r.json()["retrieval_model_dict"]["search_method"] == "full_text_search"
    assert r.json()["name"] == "animals" and r.json()["description"] == "furry and not"
    check_error(
        await patch(api, kb, {"name": "billing"}),
        409,
        "dataset_name_duplicate",
        "The dataset name already exists. Please modify your dataset name.",
    )
    assert (await patch(api, kb, {"name": "animals"})).status_code == 200  # its own name
    check_error(await patch(api, kb, {"name": ""}), 400, "invalid_param")
    check_error(await patch(api, kb, {"name": None}), 400, "invalid_param")
    check_error(await patch(api, kb, {"description": "x" * 401}), 400, "invalid_param")
    check_error(await patch(api, kb, {"permission": "world"}), 400, "invalid_param")
    check_error(
        await patch(api, kb, {"retrieval_model": {"search_method": "psychic"}}),
        400,
        "invalid_param",
    )
    missing = "00000000-0000-4000-8000-000000000000"
    check_error(await patch(api, missing, {"name": "x"}), 404, "not_found", "Dataset not found.")


async def test_patch_embedding_model_only_while_empty(api: Api) -> None:
    kb = await api.dataset("pets")
    r = await patch(
        api,
        kb,
        {"embedding_model_provider": "openai", "embedding_model": "text-embedding-3-small"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["embedding_model"] == "text-embedding-3-small"
    assert r.json()["embedding_model_provider"] == "openai"
    other = await api.dataset("billing")
    await api.wait(other, (await api.add_text(other, "billing", BILLING))["batch"])
    check_error(
        await patch(
            api,
            other,
            {"embedding_model_provider": "openai", "embedding_model": "text-embedding-3-small"},
        ),
        400,
        "invalid_param",
    )
    shown = (await api.get(f"/datasets/{other}")).json()
    same = {k: shown[k] for k in ("embedding_model_provider", "embedding_model")}
    r = await patch(api, other, same)
    assert r.status_code == 200, r.text
