"""App definitions: Dify DSL and parlour documents in, warnings for what is not honoured."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from parlour.errors import InvalidParam
from parlour.services import appdef
from parlour.storage.models import App

DATA = Path(__file__).resolve().parents[1] / "data"


def test_dify_chat_app_maps_every_field() -> None:
    d = appdef.load((DATA / "dify_chat_app.yml").read_text())
    assert (d.name, d.mode) == ("Topic helper", "chat")
    assert d.description.startswith("Answers questions")
    c = d.config
    assert c.model.provider == "openai" and c.model.name == "gpt-4o-mini"
    assert c.model.model_extra == {"dify_provider": "langgenius/openai/openai"}
    p = c.model.completion_params
    assert (p.temperature, p.top_p, p.max_tokens) == (0.2, 0.9, 512)
    assert c.pre_prompt.startswith("You are an expert on {{topic}}")
    assert c.opening_statement == "Hello! Ask me about {{topic}}."
    assert c.suggested_questions == ["What is it?", "Why does it matter?"]
    assert c.suggested_questions_after_answer.enabled is True
    assert [next(iter(i)) for i in c.user_input_form] == [
        "text-input", "select", "paragraph", "number", "checkbox",
    ]
    assert c.site["icon"] == "🦜" and c.site["use_icon_as_answer_icon"] is True
    assert c.site["title"] == "Topic helper"
    assert d.warnings == [
        "dependencies (Dify plugins) are not installed by parlour",
        "model.completion_params.presence_penalty: not sent to the model",
    ]


def test_dify_agent_app_with_everything_on_warns_for_each() -> None:
    d = appdef.load((DATA / "dify_agent_app.yml").read_text())
    assert d.mode == "agent-chat" and d.config.opening_statement == ""
    text = "\n".join(d.warnings)
    for expected in (
        "model provider 'anthropic'", "sensitive_word_avoidance", "annotation_reply",
        "speech_to_text", "text_to_speech", "more_like_this", "file_upload",
        "agent_mode.tools", "external_data_tools", "dataset_query_variable",
        "prompt_type advanced", "model.mode 'completion'", "user_input_form 'external_data_tool'",
        "some_future_field: kept but not used",
    ):
        assert expected in text, expected


def test_parlour_document_and_round_trips() -> None:
    d = appdef.load((DATA / "parlour_app.yml").read_text())
    assert d.warnings == [] and d.config.tags == ["hotel"]
    assert d.config.conversation_variables[0]["value"] == "Lisbon"
    app = App(id="x", name=d.name, description=d.description, mode=d.mode,
              config=d.config.model_dump(mode="json"))
    again = appdef.load(appdef.export(app))
    assert again.config == d.config and again.name == d.name
    dsl = appdef.load((DATA / "dify_chat_app.yml").read_text())
    app = App(id="y", name=dsl.name, description=dsl.description, mode=dsl.mode,
              config={**dsl.config.model_dump(mode="json"),
                      "model": {**dsl.config.model.model_dump(), "api_key": "sk-secret"}})
    out = yaml.safe_load(appdef.export(app, "dify"))
    assert out["kind"] == "app" and out["app"]["icon"] == "🦜"
    assert out["model_config"]["model"]["provider"] == "langgenius/openai/openai"
    assert "sk-secret" not in appdef.export(app) and "sk-secret" not in appdef.export(app, "dify")
    assert appdef.load(appdef.export(app, "dify")).config.pre_prompt == dsl.config.pre_prompt


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "mapping"),
    ("kind: app\napp: {name: x, mode: advanced-chat}\nworkflow: {}", "cannot be imported"),
    ("kind: app\napp: {name: x, mode: completion}\nmodel_config: {}", "cannot be imported"),
    ("kind: app\napp: {mode: chat}\nmodel_config: {pre_prompt: x}", "app.name is required"),
    ("kind: app\napp: {name: x}\n", "model_config is missing"),
    ("kind: parlour-app\napp: {name: x}\nconfig: {prompt_type: weird}", "invalid app config"),
    ("kind: parlour-app\napp: {name: x}\nconfig:\n  conversation_variables:\n"
     "  - {name: 'bad name', value_type: string}", "not a valid identifier"),
    ("kind: parlour-app\napp: {name: x}\nconfig:\n  conversation_variables:\n"
     "  - {name: n, value_type: number, value: 'one'}", "default is not a number"),
    ("key: [unclosed", "not a YAML"),
    ("kind: other", "unknown document"),
])
def test_unusable_documents_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidParam) as info:
        appdef.load(text)
    assert message in info.value.message
