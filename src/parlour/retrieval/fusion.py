"""Search modes and the fusion of dense and full-text results.

Dify's modes: ``semantic_search``, ``full_text_search``, ``hybrid_search``. Naive reciprocal
rank fusion lets a poor keyword ranking push good dense hits out of the top k, so hybrid here is
a weighted sum of scores: the dense cosine of *every* candidate (computed exactly, also for
keyword-only hits) plus a small weight of BM25, rescaled so that the base's weakest keyword
candidate gets nothing. Any-term BM25 rewards common words, so the weakest match is noise.

The default weights (0.9 / 0.1) and the rescaling were chosen on bench/knowledge_eval.py's
tuning half; see bench/KNOWLEDGE.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

SearchMethod = Literal["semantic_search", "full_text_search", "hybrid_search"]
METHODS: tuple[str, ...] = ("semantic_search", "full_text_search", "hybrid_search")
ALIASES = {
    "semantic": "semantic_search",
    "full_text": "full_text_search",
    "fulltext": "full_text_search",
    "keyword": "full_text_search",
    "hybrid": "hybrid_search",
}


def method_name(value: str) -> str:
    name = ALIASES.get(value, value)
    if name not in METHODS:
        raise ValueError(f"search method must be one of {', '.join(METHODS)}")
    return name


@dataclass(frozen=True, slots=True)
class Weights:
    vector: float = 0.9
    keyword: float = 0.1


def normalise_keyword(scores: Mapping[str, float], top: float | None = None) -> dict[str, float]:
    """BM25 (higher is better) scaled into 0..1 by the best score of the query (or ``top``)."""
    if not scores:
        return {}
    top = max(scores.values()) if top is None else top
    return {k: (v / top if top > 0 else 0.0) for k, v in scores.items()}


def keyword_floor(scores: Mapping[str, float]) -> dict[str, float]:
    """Scaled BM25 (0..1) shifted so the weakest of several candidates gets 0, the best keeps
    its value."""
    if len(scores) < 2:
        return dict(scores)
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return dict(scores)
    return {k: high * (v - low) / (high - low) for k, v in scores.items()}


def fuse(
    dense: Mapping[str, float],
    keyword: Mapping[str, float],
    weights: Weights,
    top: float | None = None,
) -> list[tuple[str, float]]:
    """Weighted sum; ``dense`` should hold the cosine of every candidate in ``keyword`` too."""
    kw = keyword_floor(normalise_keyword(keyword, top))
    total = weights.vector + weights.keyword or 1.0
    ids = set(dense) | set(kw)
    scored = [
        (
            i,
            (weights.vector * max(dense.get(i, 0.0), 0.0) + weights.keyword * kw.get(i, 0.0))
            / total,
        )
        for i in ids
    ]
    scored.sort(key=lambda x: (-x[1], x[0]))
    return scored
