"""Full-text search over knowledge segments: SQLite FTS5 (BM25) or PostgreSQL tsvector."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_WORD = re.compile(r"\w+", re.UNICODE)

_SQLITE = text(
    "SELECT s.id, -bm25(knowledge_segments_fts, 1.0, 0.5) AS score "
    "FROM knowledge_segments_fts JOIN knowledge_segments s "
    "ON s.rowid = knowledge_segments_fts.rowid "
    "WHERE knowledge_segments_fts MATCH :q AND s.kb_id = :kb "
    "ORDER BY score DESC LIMIT :n"
)
_POSTGRES = text(
    "SELECT id, ts_rank_cd(tsv, q, 1) AS score "
    "FROM knowledge_segments, to_tsquery('english', :q) AS q "
    "WHERE kb_id = :kb AND tsv @@ q ORDER BY score DESC LIMIT :n"
)


def terms(query: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word.strip("_"), None)
    return [w for w in seen if w]


async def keyword_search(
    session: AsyncSession, kb_id: str, query: str, limit: int
) -> dict[str, float]:
    """Segment id -> relevance (higher is better), any-term match, best ``limit``."""
    words = terms(query)
    if not words:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(_POSTGRES, {"q": " | ".join(words), "kb": kb_id, "n": limit})
    else:
        q = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
        rows = await session.execute(_SQLITE, {"q": q, "kb": kb_id, "n": limit})
    return {sid: float(score) for sid, score in rows.all()}
