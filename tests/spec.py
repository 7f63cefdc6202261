"""The seed contract (../shared/spec/chat-app-openapi.json) as JSON-schema validators."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "spec" / "chat-app-openapi.json"


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: ``nullable`` becomes a null type; discriminators dropped."""
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k not in ("discriminator", "example")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def validator(schema_name: str) -> jsonschema.Draft7Validator:
    components = _to_json_schema(spec()["components"])
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": components}
    return jsonschema.Draft7Validator(root, format_checker=jsonschema.FormatChecker())


def check(schema_name: str, instance: Any) -> None:
    """Raise with every violation listed."""
    errors = sorted(validator(schema_name).iter_errors(instance), key=str)
    if errors:
        raise AssertionError(
            f"{schema_name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
        )


def stream_examples() -> list[dict[str, Any]]:
    """Every ``data:`` frame in the spec's streaming examples of POST /chat-messages."""
    op = spec()["paths"]["/chat-messages"]["post"]
    examples = op["responses"]["200"]["content"]["text/event-stream"]["examples"]
    frames = []
    for example in examples.values():
        for block in str(example["value"]).split("\n\n"):
            block = block.strip()
            if block.startswith("data:"):
                frames.append(json.loads(block[5:]))
    return frames
