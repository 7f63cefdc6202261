"""``inputs`` checked against the app's ``user_input_form``, with Dify's rules and messages.

Rules (``reference/dify-service-api-behavior.md`` §2.3): only declared variables are kept, every
declared variable ends up present (``null`` when absent), ``required`` rejects only absent/null
values, strings have ``max_length``, selects their ``options``, numbers are coerced from strings,
checkboxes from the usual words. Deliberate differences: a declared ``default`` fills an absent
optional variable; an object or list given for a number is a 400, not a 500; and an app with no
form at all keeps the inputs it is given (so ``{{var}}`` in a prompt still works for apps made
with ``parlour apps create``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parlour.errors import InvalidParam

STRING_TYPES = ("text-input", "paragraph", "select")
FORM_TYPES = (*STRING_TYPES, "number", "checkbox")
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def form_fields(form: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(control type, settings) of the controls parlour validates, in form order."""
    fields = []
    for item in form:
        kind, cfg = next(iter(item.items()))
        if kind in FORM_TYPES and isinstance(cfg, dict) and cfg.get("variable"):
            fields.append((kind, cfg))
    return fields


def check_inputs(
    form: list[dict[str, Any]], inputs: Mapping[str, Any], *, partial: bool = False
) -> dict[str, Any]:
    """The inputs to store and use. ``partial`` (a follow-up message): check only the
    variables that were sent, and do not require the others (they are stored already)."""
    if not form:
        return {k: _strip_nul(v) for k, v in inputs.items()}
    out: dict[str, Any] = {}
    for kind, cfg in form_fields(form):
        var = str(cfg["variable"])
        value = inputs.get(var)
        if value is None:
            if partial:
                continue
            if cfg.get("required"):
                raise InvalidParam(f"{var} is required in input form")
            default = cfg.get("default")
            if default in (None, ""):
                out[var] = None
                continue
            value = default
        out[var] = _strip_nul(_check(kind, cfg, var, value))
    bad = [k for k, v in out.items() if isinstance(v, (dict, list))]
    if bad:
        raise InvalidParam(f"Invalid input type for [{', '.join(bad)}]")
    return out


def _check(kind: str, cfg: dict[str, Any], var: str, value: Any) -> Any:
    if kind in STRING_TYPES:
        if not isinstance(value, str):
            raise InvalidParam(f"(type '{kind}') {var} in input form must be a string")
        max_length = cfg.get("max_length")
        if kind != "select" and max_length and len(value) > int(max_length):
            raise InvalidParam(f"{var} in input form must be less than {max_length} characters")
        options = cfg.get("options") or []
        if kind == "select" and value not in options:
            raise InvalidParam(f"{var} in input form must be one of the following: {options}")
        return value
    if kind == "number":
        return _number(var, value)
    return _checkbox(value)


def _number(var: str, value: Any) -> int | float | None:
    if isinstance(value, (int, float)):
        return value
    if not isinstance(value, str):
        raise InvalidParam(f"{var} in input form must be a valid number")
    text = value.strip()
    if not text:
        return None
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise InvalidParam(f"{var} in input form must be a valid number") from None


def _checkbox(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    elif not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


def _strip_nul(value: Any) -> Any:
    return value.replace("\x00", "") if isinstance(value, str) else value
