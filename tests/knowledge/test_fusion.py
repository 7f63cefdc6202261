"""Hybrid fusion of dense and keyword scores: pure functions, no model."""

from __future__ import annotations

import pytest

from parlour.retrieval.fusion import Weights, fuse, method_name, normalise_keyword

W = Weights()


def ranking(dense: dict[str, float], keyword: dict[str, float], w: Weights = W) -> list[str]:
    return [i for i, _ in fuse(dense, keyword, w)]


def test_strong_dense_hit_is_not_pushed_out_by_weak_keyword_hits() -> None:
    dense = {"answer": 0.72, "a": 0.31, "b": 0.30, "c": 0.29, "d": 0.28, "e": 0.27}
    keyword = {"a": 9.0, "b": 8.5, "c": 8.0, "d": 7.5, "e": 7.0}  # the answer has no term
    assert ranking(dense, keyword)[0] == "answer"


def test_keyword_match_lifts_one_of_near_equal_dense_hits() -> None:
    dense = {"a": 0.52, "b": 0.50, "c": 0.49}
    keyword = {"b": 4.0}
    assert ranking(dense, keyword)[0] == "b"


def test_keyword_only_candidate_can_enter_the_ranking() -> None:
    dense = {"a": 0.40, "b": 0.39, "k": 0.36}  # k: its cosine, computed because it matched
    keyword = {"k": 12.0, "a": 0.5}
    assert "k" in ranking(dense, keyword)[:2]


def test_scores_are_between_zero_and_one_and_sorted() -> None:
    fused = fuse({"a": 0.9, "b": -0.2, "c": 0.1}, {"b": 3.0, "c": 1.0}, W)
    scores = [s for _, s in fused]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)


def test_zero_keyword_weight_is_the_dense_ranking() -> None:
    dense = {"a": 0.3, "b": 0.6, "c": 0.5}
    keyword = {"a": 10.0, "c": 1.0}
    assert ranking(dense, keyword, Weights(1.0, 0.0)) == ["b", "c", "a"]


def test_no_keyword_hits_keeps_dense_order() -> None:
    assert ranking({"a": 0.2, "b": 0.7}, {}) == ["b", "a"]
    assert fuse({}, {}, W) == []


def test_keyword_scores_share_one_scale_across_bases() -> None:
    assert normalise_keyword({"a": 2.0, "b": 1.0}, top=4.0) == {"a": 0.5, "b": 0.25}
    assert normalise_keyword({"a": 2.0, "b": 1.0}) == {"a": 1.0, "b": 0.5}


@pytest.mark.parametrize(
    ("alias", "name"),
    [("hybrid", "hybrid_search"), ("keyword", "full_text_search"), ("semantic", "semantic_search")],
)
def test_method_aliases(alias: str, name: str) -> None:
    assert method_name(alias) == name
    with pytest.raises(ValueError):
        method_name("vector")
