"""schemathesis against parlour's own /v1/openapi.json, on the real server: generated requests
(valid and invalid) to every operation, with a real app key. No response may be a 5xx, carry
an undocumented status or content type, or break its documented schema.

Two rounds per database: ids made up by the generator (mostly 404s and 400s), then the ids of a
real conversation, message, variable, end user and task with ``user`` set to their owner, so
the handlers' success paths are fuzzed too (DELETE last: it removes the conversation).
Generation is derandomized so CI sees the same cases every run; the case count is asserted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from parlour.storage.models import EndUser
from tests.api.helpers import db as open_db
from tests.api.helpers import set_config
from tests.conftest import Server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Cases per (operation, mode) in the made-up-ids round and per operation in the real-ids round.
# SQLite carries the 2,000+ cases; PostgreSQL runs the same code paths on fewer cases.
BUDGET = {"sqlite": (60, 70), "postgresql": (15, 20)}
MINIMUM = {"sqlite": 2000, "postgresql": 450}


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def fuzz(
    server: Server,
    operation: Any,
    mode: GenerationMode,
    examples: int,
    tally: Tally,
    session: requests.Session,
    fixed: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    fixed = fixed or {}
    strategy = operation.as_strategy(
        generation_mode=mode,
        path_parameters=fixed.get("path") or None,
        query=fixed.get("query") or None,
    )

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
        if fixed.get("user") and isinstance(case.body, dict):
            case.body["user"] = fixed["user"]
        tally.cases += 1
        response = case.call(
            base_url=server.base, session=session, headers=headers or server.auth(), timeout=20
        )
        tally.statuses[(operation.label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseException as exc:  # FailureGroup: keep going, report them all at the end
            if len(tally.failures) < 30:
                tally.failures.append(f"{operation.label} [{mode.value}]: {exc}")

    try:
        run()
    except Unsatisfiable:
        pass  # e.g. no invalid request exists for an operation without parameters


async def real_ids(server: Server) -> dict[str, str]:
    await set_config(
        server,
        suggested_questions_after_answer={"enabled": True},
        conversation_variables=[{"name": "city", "value_type": "string", "value": "Oslo"}],
    )
    body = (await server.chat("hello")).json()
    cid = body["conversation_id"]
    h, u = server.auth(), {"user": "alice"}
    variables = await server.client.get(f"/v1/conversations/{cid}/variables", params=u, headers=h)
    async with open_db(server) as session:
        end_user_id = await session.scalar(select(EndUser.id).where(EndUser.session_id == "alice"))
    assert end_user_id
    return {
        "end_user_id": end_user_id,
        "conversation_id": cid,
        "message_id": body["message_id"],
        "task_id": body["task_id"],
        "variable_id": variables.json()["data"][0]["id"],
    }


def fixed_for(operation: Any, ids: dict[str, str]) -> dict[str, Any]:
    names = {p.name for p in operation.path_parameters}
    path = {k: v for k, v in ids.items() if k in names}
    query_names = {p.name for p in operation.query}
    query = {"user": "alice"} if "user" in query_names else {}
    if "conversation_id" in query_names:
        query["conversation_id"] = ids["conversation_id"]
    return {"path": path, "query": query, "user": "alice"}


def knowledge_api(path: str) -> bool:
    return path.startswith("/v1/datasets")  # its own keys; fuzzed in tests/knowledge


def app_operations(doc: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if not knowledge_api(op.path)]


def run_all(server: Server, doc: dict[str, Any], ids: dict[str, str], db: str) -> Tally:
    operations = app_operations(doc)
    made_up, real = BUDGET[db]
    tally = Tally()
    with requests.Session() as session:
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(server, op, mode, made_up, tally, session)
        for op in sorted(operations, key=lambda o: o.method.upper() == "DELETE"):
            fuzz(server, op, GenerationMode.POSITIVE, real, tally, session, fixed_for(op, ids))
    return tally


@pytest.mark.timeout(300)  # about 2,000 cases: 85 s on a busy 2-core machine
async def test_generated_requests_never_fail_or_break_the_schema(
    server: Server, request: pytest.FixtureRequest
) -> None:
    db = request.node.callspec.params["database"]
    doc = (await server.client.get("/v1/openapi.json")).json()
    ids = await real_ids(server)
    tally = await asyncio.to_thread(run_all, server, doc, ids, db)
    assert not tally.failures, "\n\n".join(tally.failures)
    assert tally.cases >= MINIMUM[db], tally.cases
    # every operation was reached, and the success paths were exercised, not only errors
    labels = {label for label, _ in tally.statuses}
    app_paths = [ops for path, ops in doc["paths"].items() if not knowledge_api(path)]
    assert len(labels) == sum(len(ops) for ops in app_paths)
    ok = {label for (label, status), n in tally.statuses.items() if status < 300}
    for label in (
        "POST /v1/chat-messages",
        "GET /v1/messages",
        "GET /v1/conversations",
        "POST /v1/conversations/{conversation_id}/name",
        "PUT /v1/conversations/{conversation_id}/variables/{variable_id}",
        "POST /v1/messages/{message_id}/feedbacks",
        "GET /v1/messages/{message_id}/suggested",
        "DELETE /v1/conversations/{conversation_id}",
    ):
        assert label in ok, (label, sorted(tally.statuses.items()))
    # the server still answers normally afterwards
    assert (await server.chat("still there?")).status_code == 200
