"""``inputs`` validated against the app's user_input_form (Dify's §2.3 rules and messages)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from parlour.services.inputs import check_inputs
from parlour.storage.models import Conversation
from tests.api.helpers import db, set_config
from tests.conftest import Server

FORM: list[dict[str, Any]] = [
    {"text-input": {"label": "Name", "variable": "name", "required": True, "max_length": 5}},
    {"paragraph": {"label": "Bio", "variable": "bio", "required": False}},
    {"select": {"label": "Tone", "variable": "tone", "required": False,
                "options": ["formal", "casual"]}},
    {"number": {"label": "Age", "variable": "age", "required": False}},
    {"checkbox": {"label": "VIP", "variable": "vip", "required": False}},
]


def test_rules_and_messages() -> None:
    ok = check_inputs(FORM, {"name": "Ada", "age": "3.5", "vip": "Yes", "junk": 1})
    assert ok == {"name": "Ada", "bio": None, "tone": None, "age": 3.5, "vip": True}
    assert check_inputs(FORM, {"name": "", "age": "7"})["age"] == 7  # "" satisfies required
    assert check_inputs(FORM, {"name": "a\x00b", "age": " "})["name"] == "ab"
    cases = [
        ({}, "name is required in input form"),
        ({"name": None}, "name is required in input form"),
        ({"name": 5}, "(type 'text-input') name in input form must be a string"),
        ({"name": "toolong"}, "name in input form must be less than 5 characters"),
        ({"name": "a", "tone": "rude"},
         "tone in input form must be one of the following: ['formal', 'casual']"),
        ({"name": "a", "age": "x"}, "age in input form must be a valid number"),
        ({"name": "a", "age": {"n": 1}}, "age in input form must be a valid number"),
        ({"name": "a", "vip": {"x": 1}}, "Invalid input type for [vip]"),
    ]
    for inputs, message in cases:
        try:
            check_inputs(FORM, inputs)
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "message", None) == message, inputs
            assert getattr(exc, "code", None) == "invalid_param"
        else:
            raise AssertionError(f"accepted {inputs}")


def test_partial_and_no_form() -> None:
    assert check_inputs(FORM, {"age": "2"}, partial=True) == {"age": 2}
    assert check_inputs([], {"anything": "goes\x00"}) == {"anything": "goes"}
    form = [{"text-input": {"variable": "lang", "required": False, "default": "en"}}]
    assert check_inputs(form, {}) == {"lang": "en"}


async def test_chat_rejects_bad_inputs_and_stores_good_ones(server: Server) -> None:
    await set_config(server, user_input_form=FORM, pre_prompt="Hi {{name}}, tone {{tone}}.")
    r = await server.chat("hello", inputs={})
    assert r.status_code == 400
    assert r.json() == {
        "code": "invalid_param", "message": "name is required in input form", "status": 400,
    }
    r = await server.chat("hello", inputs={"name": "Ada", "tone": "casual", "extra": "x"},
                          response_mode="streaming")
    assert r.status_code == 200
    r = await server.chat(
        "hello", inputs={"name": "Ada", "tone": "casual"}, auto_generate_name=False
    )
    body = r.json()
    assert server.fake.calls[-1][0].content == "Hi Ada, tone casual."
    async with db(server) as session:
        stored = await session.scalar(
            select(Conversation.inputs).where(Conversation.id == body["conversation_id"])
        )
    assert stored == {"name": "Ada", "bio": None, "tone": "casual", "age": None, "vip": None}
    # a follow-up need not resend required inputs; a bad one is still rejected
    r = await server.chat("again", conversation_id=body["conversation_id"])
    assert r.status_code == 200
    assert server.fake.calls[-1][0].content == "Hi Ada, tone casual."
    r = await server.chat("again", conversation_id=body["conversation_id"], inputs={"tone": "x"})
    assert r.status_code == 400 and "must be one of the following" in r.json()["message"]


async def test_streaming_request_with_bad_inputs_is_plain_json_error(server: Server) -> None:
    await set_config(server, user_input_form=FORM)
    r = await server.client.post(
        "/v1/chat-messages", headers=server.auth(),
        json={"query": "q", "user": "u", "response_mode": "streaming", "inputs": {"name": 1}},
    )
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")


async def test_later_inputs_are_stored_only_when_the_app_allows_it(server: Server) -> None:
    form = [{"text-input": {"label": "Tone", "variable": "tone", "required": True}}]
    await set_config(server, user_input_form=form, pre_prompt="Tone {{tone}}.")
    for allowed, expected in ((False, "calm"), (True, "loud")):
        await set_config(server, allow_inputs_update=allowed)
        cid = (await server.chat("a", inputs={"tone": "calm"}, auto_generate_name=False)).json()[
            "conversation_id"
        ]
        await server.chat("b", conversation_id=cid, inputs={"tone": "loud"})
        assert server.fake.calls[-1][0].content == "Tone loud."  # this turn uses what was sent
        r = await server.client.get("/v1/conversations", params={"user": "alice"},
                                    headers=server.auth())
        stored = next(c for c in r.json()["data"] if c["id"] == cid)["inputs"]
        assert stored == {"tone": expected}, allowed
