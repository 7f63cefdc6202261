"""Dify's usage object: prices from per-model settings, decimals as plain strings."""

from __future__ import annotations

from decimal import Decimal

from parlour.config import ModelPrice, Settings
from parlour.services.usage import usage_dict


def test_prices_follow_the_model_settings() -> None:
    settings = Settings(
        model_prices={
            "openai:gpt-4o-mini": {
                "prompt_unit_price": "0.15", "completion_unit_price": "0.6",
                "price_unit": "0.000001",
            }
        }
    )
    usage = usage_dict(1000, 500, settings.price_for("openai:gpt-4o-mini"), 1.25, 0.5)
    assert usage["prompt_price"] == "0.0001500"
    assert usage["completion_price"] == "0.0003000"
    assert usage["total_price"] == "0.0004500"
    assert usage["prompt_unit_price"] == "0.15" and usage["prompt_price_unit"] == "0.000001"
    assert usage["total_tokens"] == 1500 and usage["currency"] == "USD"
    assert usage["latency"] == 1.25 and usage["time_to_first_token"] == 0.5
    assert usage["time_to_generate"] == 0.75


def test_unknown_models_cost_nothing() -> None:
    usage = usage_dict(10, 5, Settings().price_for("local:smollm2"), 0.1)
    assert usage["total_price"] == "0.0000000" and usage["prompt_unit_price"] == "0"
    assert usage["time_to_first_token"] is None
    assert ModelPrice().price_unit == Decimal("0.001")
