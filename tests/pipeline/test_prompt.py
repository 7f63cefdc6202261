"""Prompt assembly: variables, and history trimmed by tokens, newest turns first."""

from __future__ import annotations

from parlour.pipeline.prompt import build_messages, fill
from parlour.providers.tokens import count_tokens


def test_fill_variables() -> None:
    assert fill("Hi {{ name }}, you like {{topic}}.", {"name": "Ada", "topic": 3}) == (
        "Hi Ada, you like 3."
    )
    assert fill("{{missing}}!", {}) == "!"


def test_history_keeps_newest_turns_within_budget() -> None:
    history = [(f"question {i} " + "word " * 50, f"answer {i} " + "word " * 50) for i in range(10)]
    messages = build_messages(
        system="sys", history=history, query="now?", count=count_tokens,
        context_window=600, max_tokens=100,
    )
    assert messages[0].role == "system" and messages[-1].content == "now?"
    kept = [m.content for m in messages[1:-1]]
    assert kept, "some history must fit"
    assert kept[-1].startswith("answer 9")  # the newest turn is kept
    assert not any(k.startswith("question 0") for k in kept)  # the oldest is dropped
    total = sum(count_tokens(m.content) + 4 for m in messages)
    assert total <= 600 - 100
    roles = [m.role for m in messages[1:-1]]
    assert roles == ["user", "assistant"] * (len(roles) // 2)


def test_no_history_fits_when_query_is_huge() -> None:
    messages = build_messages(
        system="", history=[("q", "a")], query="x " * 5000, count=count_tokens,
        context_window=1000, max_tokens=None,
    )
    assert [m.role for m in messages] == ["user"]


def test_tokens_are_counted_only_when_the_history_may_not_fit() -> None:
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return count_tokens(text)

    history = [("q1", "a1"), ("q2", "a2")]
    short = build_messages(
        system="sys", history=history, query="now?", count=counting,
        context_window=8192, max_tokens=None,
    )
    assert calls == [] and len(short) == 6  # even at a token per byte it all fits
    long_turns = [("q " * 300, "a " * 300)] * 3  # 1,800 bytes a turn, about 600 tokens
    kept = build_messages(
        system="sys", history=long_turns, query="now?", count=counting,
        context_window=2400, max_tokens=100,
    )
    assert calls, "a history that may not fit is counted exactly"
    assert len(kept) == 2 + 2 * 3  # and exactly, all three turns fit
