"""The Knowledge API on SQLite and PostgreSQL: dataset keys apart from app keys, bases,
documents indexed in the background, indexing status, segments, retrieval, and errors."""

from __future__ import annotations

import pytest

from parlour.retrieval.embedders import EmbedderRegistry
from tests.conftest import Server
from tests.knowledge.dataset_helpers import Api, check_error, new_dataset_key
from tests.knowledge.test_knowledge_service import BILLING, PETS

UNAUTHORIZED = "Access token is invalid"


@pytest.fixture
async def api(server: Server, embedders: EmbedderRegistry) -> Api:
    server.state.knowledge.embedders = embedders  # the session's loaded model
    return Api(server, await new_dataset_key(server.database))


async def test_app_and_dataset_keys_open_only_their_own_endpoints(server: Server, api: Api) -> None:
    c = server.client
    r = await c.get("/v1/datasets", headers=server.auth())
    check_error(r, 401, "unauthorized", UNAUTHORIZED)
    r = await c.get("/v1/parameters", headers=api.headers)
    check_error(r, 401, "unauthorized", UNAUTHORIZED)
    r = await c.post(
        "/v1/chat-messages",
        headers=api.headers,
        json={"query": "hi", "user": "u", "response_mode": "blocking"},
    )
    check_error(r, 401, "unauthorized", UNAUTHORIZED)
    check_error(
        await c.get("/v1/datasets"),
        401,
        "unauthorized",
        "Authorization header must be provided and start with 'Bearer'",
    )
    check_error(
        await c.get("/v1/datasets", headers={"Authorization": f"Basic {api.key}"}),
        401,
        "unauthorized",
        "Authorization scheme must be 'Bearer'",
    )
    assert api.key.startswith("dataset-")
    assert (await api.get("/datasets")).status_code == 200


async def test_a_key_for_one_base_reaches_only_that_base(server: Server, api: Api) -> None:
    pets = await api.dataset("pets")
    billing = await api.dataset("billing")
    scoped = Api(server, await new_dataset_key(server.database, "pets"))
    listed = (await scoped.get("/datasets")).json()
    assert [d["id"] for d in listed["data"]] == [pets] and listed["total"] == 1
    assert (await scoped.get(f"/datasets/{pets}")).status_code == 200
    check_error(await scoped.get(f"/datasets/{billing}"), 404, "not_found", "Dataset not found.")
    check_error(await scoped.post("/datasets", {"name": "more"}), 403, "forbidden")


async def test_datasets_create_list_get_delete(api: Api) -> None:
    r = await api.post(
        "/datasets",
        {
            "name": "pets",
            "description": "animals",
            "indexing_technique": "high_quality",
            "permission": "only_me",
        },
    )
    assert r.status_code == 200, r.text
    ds = r.json()
    assert ds["name"] == "pets" and ds["description"] == "animals"
    assert ds["indexing_technique"] == "high_quality" and ds["permission"] == "only_me"
    assert ds["provider"] == "vendor" and ds["document_count"] == 0
    assert ds["embedding_model"] == "all-MiniLM-L6-v2-q8"  # the default of new bases
    assert ds["embedding_model_provider"] == "local"
    rm = ds["retrieval_model_dict"]
    assert rm["search_method"] == "semantic_search" and rm["top_k"] == 4
    assert rm["score_threshold_enabled"] is False and rm["reranking_enable"] is False
    check_error(await api.post("/datasets", {"name": "pets"}), 409, "dataset_name_duplicate")
    economy = await api.post(
        "/datasets",
        {
            "name": "billing",
            "indexing_technique": "economy",
            "retrieval_model": {
                "search_method": "keyword_search",
                "top_k": 2,
                "score_threshold_enabled": False,
            },
        },
    )
    assert economy.json()["indexing_technique"] == "economy"
    assert economy.json()["retrieval_model_dict"]["search_method"] == "full_text_search"
    assert economy.json()["retrieval_model_dict"]["top_k"] == 2
    page = (await api.get("/datasets")).json()
    assert set(page) == {"data", "has_more", "limit", "total", "page"}
    assert [d["name"] for d in page["data"]] == ["billing", "pets"]
    assert (page["total"], page["page"], page["limit"], page["has_more"]) == (2, 1, 20, False)
    first = (await api.get("/datasets", page="1", limit="1")).json()
    assert len(first["data"]) == 1 and first["has_more"] is True
    second = (await api.get("/datasets", page="2", limit="1")).json()
    assert second["data"][0]["name"] == "pets" and second["has_more"] is False
    assert (await api.get(f"/datasets/{ds['id']}")).json()["name"] == "pets"
    r = await api.delete(f"/datasets/{ds['id']}")
    assert r.status_code == 204 and r.content == b""
    check_error(await api.get(f"/datasets/{ds['id']}"), 404, "not_found", "Dataset not found.")
    check_error(await api.delete(f"/datasets/{ds['id']}"), 404, "not_found")


async def test_text_is_indexed_in_the_background_then_retrieved(api: Api) -> None:
    kb = await api.dataset("pets")
    created = await api.add_text(kb, "pets guide", PETS)
    doc, batch = created["document"], created["batch"]
    assert doc["indexing_status"] in ("waiting", "indexing") and batch
    assert doc["name"] == "pets guide" and doc["data_source_type"] == "upload_file"
    assert doc["created_from"] == "api" and doc["doc_form"] == "text_model"
    status = await api.wait(kb, batch)
    assert status["indexing_status"] == "completed", status
    assert status["id"] == doc["id"] and status["error"] is None
    assert status["completed_segments"] == status["total_segments"] >= 1
    for key in (
        "processing_started_at",
        "parsing_completed_at",
        "splitting_completed_at",
        "completed_at",
    ):
        assert isinstance(status[key], int), key
    assert status["processing_started_at"] <= status["completed_at"]
    docs = (await api.get(f"/datasets/{kb}/documents")).json()
    assert [d["id"] for d in docs["data"]] == [doc["id"]] and docs["total"] == 1
    assert docs["data"][0]["indexing_status"] == "completed"
    assert docs["data"][0]["display_status"] == "available"
    assert docs["data"][0]["word_count"] > 0 and docs["data"][0]["position"] == 1
    segments = (await api.get(f"/datasets/{kb}/documents/{doc['id']}/segments")).json()
    assert segments["doc_form"] == "text_model" and segments["total"] == len(segments["data"])
    assert [s["position"] for s in segments["data"]] == sorted(
        s["position"] for s in segments["data"]
    )
    walk = (await api.get(f"/datasets/{kb}/documents/{doc['id']}/segments", keyword="WALK")).json()
    assert walk["total"] == 1 and "twice a day" in walk["data"][0]["content"]
    r = await api.post(
        f"/datasets/{kb}/retrieve",
        {
            "query": "how often should I walk my dog",
            "retrieval_model": {
                "search_method": "semantic_search",
                "top_k": 2,
                "score_threshold_enabled": False,
                "reranking_enable": False,
            },
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == {"content": "how often should I walk my dog"}
    best = body["records"][0]
    assert 0 < best["score"] <= 1 and len(body["records"]) <= 2
    seg = best["segment"]
    assert "twice a day" in seg["content"] and seg["document_id"] == doc["id"]
    assert seg["document"] == {
        "id": doc["id"],
        "data_source_type": "upload_file",
        "name": "pets guide",
        "doc_type": None,
        "doc_metadata": None,
    }
    for key in (
        "id",
        "position",
        "word_count",
        "tokens",
        "keywords",
        "index_node_id",
        "hit_count",
        "enabled",
        "status",
        "created_at",
    ):
        assert key in seg, key
    assert seg["hit_count"] == 1
    for method in ("keyword_search", "full_text_search", "hybrid_search"):
        r = await api.post(
            f"/datasets/{kb}/retrieve",
            {"query": "walk my dog", "retrieval_model": {"search_method": method}},
        )
        assert "twice a day" in r.json()["records"][0]["segment"]["content"], method
    assert r.json()["records"][0]["segment"]["hit_count"] == 4
    docs = (await api.get(f"/datasets/{kb}/documents")).json()
    assert docs["data"][0]["hit_count"] >= 4


async def test_a_new_version_under_the_same_name_replaces_the_document(api: Api) -> None:
    kb = await api.dataset("billing")
    first = await api.add_text(kb, "billing", BILLING)
    await api.wait(kb, first["batch"])
    again = await api.add_text(kb, "billing", BILLING.replace("five", "ten"))
    assert again["document"]["id"] == first["document"]["id"]
    assert again["batch"] != first["batch"]
    assert (await api.wait(kb, again["batch"]))["indexing_status"] == "completed"
    r = await api.post(f"/datasets/{kb}/retrieve", {"query": "refund to my card"})
    assert "ten business days" in r.json()["records"][0]["segment"]["content"]
    assert (await api.get(f"/datasets/{kb}")).json()["document_count"] == 1


@pytest.mark.parametrize("route", ["create-by-file", "create_by_file"])
async def test_files_txt_and_md(api: Api, route: str) -> None:
    kb = await api.dataset("help")
    files = {
        "hours.md": b"# Opening hours\n\nWe are open from 9 to 17 on weekdays.",
        "refunds.txt": b"Refunds reach your card within five days.",
    }
    batches = {}
    for name, data in files.items():
        r = await api.post(
            f"/datasets/{kb}/document/{route}",
            files={"file": (name, data)},
            data={
                "data": '{"indexing_technique": "high_quality", '
                '"process_rule": {"mode": "automatic"}}'
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["document"]["name"] == name
        batches[name] = r.json()["batch"]
    for batch in batches.values():
        assert (await api.wait(kb, batch))["indexing_status"] == "completed"
    r = await api.post(f"/datasets/{kb}/retrieve", {"query": "when do I get my money back"})
    assert r.json()["records"][0]["segment"]["document"]["name"] == "refunds.txt"
    r = await api.post(
        f"/datasets/{kb}/retrieve",
        {"query": "weekday opening", "retrieval_model": {"search_method": "full_text_search"}},
    )
    assert r.json()["records"][0]["segment"]["document"]["name"] == "hours.md"
    listed = (await api.get(f"/datasets/{kb}/documents", keyword="HOURS")).json()
    assert [d["name"] for d in listed["data"]] == ["hours.md"]


async def test_file_errors(api: Api) -> None:
    kb = await api.dataset("help")
    route = f"/datasets/{kb}/document/create-by-file"
    check_error(
        await api.post(route, files={"file": ("tool.exe", b"MZ")}), 415, "unsupported_file_type"
    )
    check_error(
        await api.post(route, files={"file": ("a.txt", b"x")}, data={"data": "{bad"}),
        400,
        "invalid_param",
    )
    check_error(await api.post(route, files={"other": ("a.txt", b"x")}), 400, "no_file_uploaded")
    assert (await api.get(f"/datasets/{kb}/documents")).json()["total"] == 0


async def test_errors_are_difys(api: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path in [
        ("get", f"/datasets/{missing}"),
        ("get", f"/datasets/{missing}/documents"),
        ("post", f"/datasets/{missing}/document/create-by-text"),
        ("post", f"/datasets/{missing}/retrieve"),
        ("get", "/datasets/not-a-uuid"),
        ("get", f"/datasets/{missing}/documents/123/indexing-status"),
    ]:
        r = await (
            api.get(path)
            if method == "get"
            else api.post(path, {"name": "x", "text": "y", "query": "z"})
        )
        check_error(r, 404, "not_found", "Dataset not found.")
    kb = await api.dataset("pets")
    r = await api.server.client.post(
        f"/v1/datasets/{kb}/document/create-by-text",
        content=b"{not json",
        headers={**api.headers, "Content-Type": "application/json"},
    )
    check_error(r, 400, "bad_request")
    check_error(await api.post("/datasets", {"name": ""}), 400, "invalid_param")
    check_error(await api.post("/datasets", {"name": "x" * 41}), 400, "invalid_param")
    check_error(
        await api.post(f"/datasets/{kb}/document/create-by-text", {"name": "x"}),
        400,
        "invalid_param",
    )
    check_error(
        await api.post(f"/datasets/{kb}/retrieve", {"query": " "}),
        400,
        "invalid_param",
        "Query is required.",
    )
    check_error(
        await api.post(
            f"/datasets/{kb}/retrieve",
            {"query": "x", "retrieval_model": {"search_method": "psychic"}},
        ),
        400,
        "invalid_param",
    )
    check_error(
        await api.get(f"/datasets/{kb}/documents/20240101/indexing-status"),
        404,
        "not_found",
        "Documents not found.",
    )
    check_error(
        await api.delete(f"/datasets/{kb}/documents/{missing}"),
        404,
        "not_found",
        "Document not found.",
    )
    check_error(
        await api.get(f"/datasets/{kb}/documents/{missing}/segments"),
        404,
        "not_found",
        "Document not found.",
    )


async def test_delete_document(api: Api) -> None:
    kb = await api.dataset("pets")
    created = await api.add_text(kb, "pets", PETS)
    await api.wait(kb, created["batch"])
    r = await api.delete(f"/datasets/{kb}/documents/{created['document']['id']}")
    assert r.status_code == 204 and r.content == b""
    assert (await api.get(f"/datasets/{kb}/documents")).json()["total"] == 0
    r = await api.post(f"/datasets/{kb}/retrieve", {"query": "walk my dog"})
    assert r.json()["records"] == []
