"""Split a document into chunks: by structure first (headings, paragraphs), then by tokens.

Sizes are counted with the embedding model's own tokenizer, so no chunk is silently truncated
when it is embedded. Every chunk keeps its position, the heading it sits under, and a content
hash (the unit of incremental re-indexing).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# (text) -> character spans of its tokens, in order, without special tokens
Spans = Callable[[str], Sequence[tuple[int, int]]]

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_BLANK = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class Chunk:
    position: int  # 1-based, in document order
    content: str
    title: str  # the nearest heading above it ("" if none)
    tokens: int

    @property
    def hash(self) -> str:
        return content_hash(self.title + "\n" + self.content)

    @property
    def embed_text(self) -> str:
        """What is embedded: the heading gives a chunk the context its text leaves implicit."""
        return f"{self.title}\n{self.content}" if self.title else self.content


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class _Section:
    title: str
    paragraphs: list[str]


def sections(text: str) -> list[_Section]:
    """Markdown-style headings start sections; blank lines separate paragraphs."""
    out: list[_Section] = []
    title, lines = "", []

    def flush() -> None:
        paras = [p.strip() for p in _BLANK.split("\n".join(lines)) if p.strip()]
        if paras:
            out.append(_Section(title, paras))

    fenced = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if m:
            flush()
            title, lines = m.group(2).strip(), []
        else:
            lines.append(line)
    flush()
    return out


def _split_long(text: str, spans: Spans, limit: int, overlap: int) -> list[str]:
    """Windows of at most ``limit`` tokens sharing about ``overlap``, cut between words.

    A window is re-counted after cutting (a word split mid-way tokenizes differently alone)
    and shortened until it really fits."""
    toks = list(spans(text))
    if len(toks) <= limit:
        return [text]
    starts = [i for i, (a, _) in enumerate(toks) if a == 0 or text[a - 1].isspace()]
    out: list[str] = []
    begin = 0
    while True:
        stop = min(begin + limit, len(toks))
        if stop < len(toks):  # end on a word boundary when the window holds more than a word
            stop = max((i for i in starts if begin < i <= stop), default=stop)
        piece = text[toks[begin][0] : toks[stop - 1][1]].strip()
        while stop - begin > 1 and len(spans(piece)) > limit:
            stop -= 1
            piece = text[toks[begin][0] : toks[stop - 1][1]].strip()
        out.append(piece)
        if stop >= len(toks):
            return out
        nxt = max(stop - overlap, begin + 1)
        begin = min((i for i in starts if i >= nxt), default=nxt)
        if begin >= stop:
            begin = stop


def chunk_text(text: str, spans: Spans, max_tokens: int = 240, overlap: int = 40) -> list[Chunk]:
    """Pack whole paragraphs of one section into chunks of at most ``max_tokens``.

    A paragraph longer than that is cut into overlapping token windows. Consecutive chunks of
    one section share up to ``overlap`` tokens of trailing paragraphs.
    """
    overlap = max(0, min(overlap, max_tokens // 2))
    chunks: list[Chunk] = []

    def emit(title: str, parts: list[tuple[str, int]]) -> None:
        content = "\n\n".join(p for p, _ in parts)
        chunks.append(Chunk(len(chunks) + 1, content, title, sum(n for _, n in parts)))

    for section in sections(text):
        budget = max_tokens - (len(spans(section.title)) if section.title else 0)
        budget = max(budget, max_tokens // 2)
        pieces: list[tuple[str, int]] = []
        for para in section.paragraphs:
            for piece in _split_long(para, spans, budget, overlap):
                pieces.append((piece, len(spans(piece))))
        current: list[tuple[str, int]] = []
        used = 0
        for piece, n in pieces:
            if current and used + n > budget:
                emit(section.title, current)
                carry: list[tuple[str, int]] = []
                kept = 0
                for p, pn in reversed(current):
                    if kept + pn > overlap or kept + pn + n > budget:
                        break
                    carry.insert(0, (p, pn))
                    kept += pn
                current, used = carry, kept
            current.append((piece, n))
            used += n
        if current:
            emit(section.title, current)
    return chunks
