"""schemathesis against the Knowledge API's part of /v1/openapi.json, with a dataset key:
generated requests (valid and invalid) to every dataset operation, then with the ids of a real
base, document and batch. No 5xx, no undocumented status, no response off its schema."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from parlour.retrieval.embedders import EmbedderRegistry
from tests.api.test_fuzz_openapi import CHECKS, Tally, knowledge_api
from tests.conftest import Server
from tests.knowledge.dataset_helpers import Api, new_dataset_key
from tests.knowledge.test_knowledge_service import PETS

BUDGET = {"sqlite": (12, 15), "postgresql": (4, 6)}


def fuzz(
    op: Any,
    mode: GenerationMode,
    examples: int,
    tally: Tally,
    api: Api,
    session: requests.Session,
    path: dict[str, str] | None = None,
) -> None:
    strategy = op.as_strategy(generation_mode=mode, path_parameters=path or None)

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        tally.cases += 1
        response = case.call(
            base_url=api.server.base, session=session, headers=api.headers, timeout=20
        )
        tally.statuses[(op.label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseException as exc:
            if len(tally.failures) < 30:
                tally.failures.append(f"{op.label} [{mode.value}]: {exc}")

    try:
        run()
    except Unsatisfiable:
        pass


def run_all(doc: dict[str, Any], api: Api, ids: dict[str, str], db: str) -> Tally:
    schema = schemathesis.openapi.from_dict(doc)
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [op for op in ops if knowledge_api(op.path)]
    made_up, real = BUDGET[db]
    tally = Tally()
    with requests.Session() as session:
        for op in ops:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(op, mode, made_up, tally, api, session)
        for op in sorted(ops, key=lambda o: o.method.upper() == "DELETE"):
            names = {p.name for p in op.path_parameters}
            path = {k: v for k, v in ids.items() if k in names}
            fuzz(op, GenerationMode.POSITIVE, real, tally, api, session, path)
    return tally


async def test_generated_requests_to_the_knowledge_api(
    server: Server, embedders: EmbedderRegistry, request: pytest.FixtureRequest
) -> None:
    db = request.node.callspec.params["database"]
    server.state.knowledge.embedders = embedders
    api = Api(server, await new_dataset_key(server.database))
    kb = await api.dataset("pets")
    created = await api.add_text(kb, "pets", PETS)
    await api.wait(kb, created["batch"])
    ids = {"dataset_id": kb, "document_id": created["document"]["id"], "batch": created["batch"]}
    doc = (await server.client.get("/v1/openapi.json")).json()
    tally = await asyncio.to_thread(run_all, doc, api, ids, db)
    assert not tally.failures, "\n\n".join(tally.failures)
    labels = {label for label, _ in tally.statuses}
    expected = sum(len(ops) for path, ops in doc["paths"].items() if knowledge_api(path))
    assert len(labels) == expected == 15, sorted(labels)
    ok = {label for (label, status), _n in tally.statuses.items() if status < 300}
    for label in (
        "POST /v1/datasets/{dataset_id}/document/create-by-text",
        "GET /v1/datasets/{dataset_id}/documents",
        "GET /v1/datasets/{dataset_id}/documents/{document_id}/segments",
        "GET /v1/datasets/{dataset_id}/documents/{batch}/indexing-status",
    ):
        assert label in ok, [(k, n) for k, n in tally.statuses.items() if k[0] == label]
