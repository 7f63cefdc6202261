"""Prompt assembly: fill ``{{variables}}``, keep the newest history that fits the budget."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from parlour.providers.base import ChatMessage

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PER_MESSAGE_OVERHEAD = 4  # role and separators in chat templates
DEFAULT_ANSWER_RESERVE = 512


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Replace ``{{name}}`` with ``values[name]``; unknown names become empty."""
    if "{{" not in template:
        return template

    def sub(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return "" if value is None else str(value)

    return _VAR.sub(sub, template)


def build_messages(
    *,
    system: str,
    history: Sequence[tuple[str, str]],
    query: str,
    count: Callable[[str], int],
    context_window: int,
    max_tokens: int | None,
) -> list[ChatMessage]:
    """System prompt, then as many of the newest (query, answer) turns as fit, then the query."""
    budget = context_window - (max_tokens or min(DEFAULT_ANSWER_RESERVE, context_window // 4))
    texts = [system, query, *(t for turn in history for t in turn)]
    if sum(_most_tokens(t) + PER_MESSAGE_OVERHEAD for t in texts) <= budget:
        count = _most_tokens  # everything fits even at its most: no need to count exactly
    used = count(query) + PER_MESSAGE_OVERHEAD
    if system:
        used += count(system) + PER_MESSAGE_OVERHEAD
    kept: list[tuple[str, str]] = []
    for q, a in reversed(history):
        cost = count(q) + count(a) + 2 * PER_MESSAGE_OVERHEAD
        if used + cost > budget:
            break
        used += cost
        kept.append((q, a))
    messages = [ChatMessage("system", system)] if system else []
    for q, a in reversed(kept):
        messages.append(ChatMessage("user", q))
        messages.append(ChatMessage("assistant", a))
    messages.append(ChatMessage("user", query))
    return messages


def _most_tokens(text: str) -> int:
    """At least as many tokens as any tokenizer here makes of ``text``: each token of a
    byte-level BPE or byte-fallback vocabulary holds at least one UTF-8 byte (plus a start
    token and a leading-space piece)."""
    return len(text.encode()) + 2


CONTEXT_MARK = "{{#context#}}"
# Dify's simple-mode chat template: the context block comes before the app's own prompt.
CONTEXT_PROMPT = (
    "Use the following context as your learned knowledge, inside <context></context> XML tags."
    "\n\n<context>\n{context}\n</context>\n\nWhen answer to user:\n"
    "- If you don't know, just say that you don't know.\n"
    "- If you don't know when you are not sure, ask for clarification.\n"
    "Avoid mentioning that you obtained the information from the context.\n"
    "And answer according to the language of the user's question.\n"
)


def with_context(system: str, context: str) -> str:
    """Put retrieved knowledge into the system prompt (at ``{{#context#}}`` if the app has it)."""
    if CONTEXT_MARK in system:
        return system.replace(CONTEXT_MARK, context)
    if not context:
        return system
    block = CONTEXT_PROMPT.format(context=context)
    return f"{block}\n{system}" if system else block
