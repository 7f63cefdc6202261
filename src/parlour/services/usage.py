"""Dify's usage object: int token counts, decimal prices as strings, float latency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from parlour.config import ModelPrice

_Q = Decimal("0.0000001")


def price(tokens: int, unit_price: Decimal, price_unit: Decimal) -> Decimal:
    return (Decimal(tokens) * unit_price * price_unit).quantize(_Q)


def dec(value: Decimal) -> str:
    """Plain decimal text, never exponent form: ``0.0000000``, not ``0E-7``."""
    return format(value, "f")


def usage_dict(
    prompt_tokens: int,
    completion_tokens: int,
    prices: ModelPrice,
    latency: float,
    time_to_first_token: float | None = None,
) -> dict[str, Any]:
    ttft = time_to_first_token
    prompt_price = price(prompt_tokens, prices.prompt_unit_price, prices.price_unit)
    completion_price = price(completion_tokens, prices.completion_unit_price, prices.price_unit)
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_unit_price": dec(prices.prompt_unit_price),
        "prompt_price_unit": dec(prices.price_unit),
        "prompt_price": dec(prompt_price),
        "completion_tokens": completion_tokens,
        "completion_unit_price": dec(prices.completion_unit_price),
        "completion_price_unit": dec(prices.price_unit),
        "completion_price": dec(completion_price),
        "total_tokens": prompt_tokens + completion_tokens,
        "total_price": dec(prompt_price + completion_price),
        "currency": prices.currency,
        "latency": round(latency, 6),
        "time_to_first_token": None if ttft is None else round(ttft, 6),
        "time_to_generate": None if ttft is None else round(max(latency - ttft, 0.0), 6),
    }
