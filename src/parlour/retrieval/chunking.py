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
from typing import Any

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
    title = ""
    lines: list[str] = []

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


def _clip(text: str, spans: Spans, limit: int) -> str:
    """``text`` cut to at most ``limit`` tokens (re-counted, as a cut word may count more)."""
    toks = spans(text)
    if len(toks) <= limit:
        return text
    stop = limit
    while stop > 0 and len(spans(text[: toks[stop - 1][1]].rstrip())) > limit:
        stop -= 1
    return text[: toks[stop - 1][1]].rstrip() if stop else ""


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
        title = _clip(section.title, spans, max_tokens // 2)  # heading + chunk embed whole
        budget = max_tokens - (len(spans(title)) if title else 0)
        pieces: list[tuple[str, int]] = []
        for para in section.paragraphs:
            for piece in _split_long(para, spans, budget, overlap):
                pieces.append((piece, len(spans(piece))))
        current: list[tuple[str, int]] = []
        used = 0
        for piece, n in pieces:
            if current and used + n > budget:
                emit(title, current)
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
            emit(title, current)
    return chunks


# --- Dify's process_rule: cleaning, then chunks cut at a separator -------------------------

MODES = ("automatic", "custom")
CLEANERS = ("remove_extra_spaces", "remove_urls_emails", "remove_stopwords")
MIN_TOKENS, MAX_TOKENS = 50, 4000  # Dify's bounds of a custom segment length
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe]")
_SPACES = re.compile(r"[\t\f\r\x20\u00a0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]{2,}")
_EMAIL = re.compile(r"[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+")
_URL = re.compile(r"https?://[^\s)]+")


@dataclass(frozen=True, slots=True)
class Rule:
    """How a document is cut. ``separator`` None: by structure (``chunk_text``); otherwise
    every piece between separators is a chunk of its own, long ones cut into token windows."""

    max_tokens: int = 240
    overlap: int = 40
    separator: str | None = None
    remove_extra_spaces: bool = False
    remove_urls_emails: bool = False


def check_process_rule(raw: object) -> dict[str, object]:
    """Dify's ``process_rule`` validated (its messages), normalised: pre-processing rules
    deduplicated by id, ``rules`` empty in automatic mode. Raises ValueError."""
    if not isinstance(raw, dict):
        raise ValueError("Process rule is invalid")
    mode = raw.get("mode")
    if not mode:
        raise ValueError("Process rule mode is required")
    if mode == "hierarchical":
        raise ValueError("Process rule mode hierarchical (parent-child chunks) is not supported")
    if mode not in MODES:
        raise ValueError("Process rule mode is invalid")
    if mode == "automatic":
        return {"mode": mode, "rules": {}}
    rules = raw.get("rules")
    if not rules:
        raise ValueError("Process rule rules is required")
    if not isinstance(rules, dict):
        raise ValueError("Process rule rules is invalid")
    return {"mode": mode, "rules": _checked_rules(rules)}


def _checked_rules(rules: dict[str, object]) -> dict[str, object]:
    pre = rules.get("pre_processing_rules")
    if pre is None:
        raise ValueError("Process rule pre_processing_rules is required")
    if not isinstance(pre, list):
        raise ValueError("Process rule pre_processing_rules is invalid")
    unique: dict[str, dict[str, object]] = {}
    for item in pre:
        if not isinstance(item, dict) or not item.get("id"):
            raise ValueError("Process rule pre_processing_rules id is required")
        if item["id"] not in CLEANERS:
            raise ValueError("Process rule pre_processing_rules id is invalid")
        if item.get("enabled") is None:
            raise ValueError("Process rule pre_processing_rules enabled is required")
        if not isinstance(item["enabled"], bool):
            raise ValueError("Process rule pre_processing_rules enabled is invalid")
        unique[str(item["id"])] = {"id": item["id"], "enabled": item["enabled"]}
    seg = rules.get("segmentation")
    if seg is None:
        raise ValueError("Process rule segmentation is required")
    if not isinstance(seg, dict):
        raise ValueError("Process rule segmentation is invalid")
    return {"pre_processing_rules": list(unique.values()), "segmentation": _segmentation(seg)}


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _segmentation(seg: dict[str, object]) -> dict[str, object]:
    separator, size = seg.get("separator"), seg.get("max_tokens")
    if not separator:
        raise ValueError("Process rule segmentation separator is required")
    if not isinstance(separator, str):
        raise ValueError("Process rule segmentation separator is invalid")
    if not size:
        raise ValueError("Process rule segmentation max_tokens is required")
    if not _whole(size):
        raise ValueError("Process rule segmentation max_tokens is invalid")
    assert isinstance(size, int)
    if not MIN_TOKENS <= size <= MAX_TOKENS:
        raise ValueError(f"Custom segment length should be between {MIN_TOKENS} and {MAX_TOKENS}.")
    overlap = seg.get("chunk_overlap") or 0
    if not _whole(overlap) or overlap < 0:  # type: ignore[operator]
        raise ValueError("Process rule segmentation chunk_overlap is invalid")
    assert isinstance(overlap, int)
    if overlap > size:
        raise ValueError(
            f"Got a larger chunk overlap ({overlap}) than chunk size ({size}), should be smaller."
        )
    return {"separator": separator, "max_tokens": size, "chunk_overlap": overlap}


def rule_of(process_rule: dict[str, Any] | None, max_tokens: int, overlap: int) -> Rule:
    """The ``Rule`` of a checked ``process_rule``; automatic (or none) is the base's
    structure chunking of ``max_tokens`` with ``overlap``."""
    rules = (process_rule or {}).get("rules")
    if (process_rule or {}).get("mode") != "custom" or not isinstance(rules, dict):
        return Rule(max_tokens, overlap)
    seg: dict[str, Any] = rules["segmentation"]
    enabled = {r["id"] for r in rules["pre_processing_rules"] if r["enabled"]}
    return Rule(
        int(seg["max_tokens"]),
        int(seg["chunk_overlap"]),
        str(seg["separator"]).replace("\\n", "\n"),  # Dify's escaped form
        "remove_extra_spaces" in enabled,
        "remove_urls_emails" in enabled,
    )


def clean(text: str, rule: Rule) -> str:
    """Dify's cleaning: control characters always; extra spaces, URLs and e-mail addresses
    when the rule says so (``remove_stopwords`` is accepted and, as in Dify, does nothing)."""
    text = _CONTROL.sub("", text.replace("<|", "<").replace("|>", ">"))
    if rule.remove_extra_spaces:
        text = _SPACES.sub(" ", re.sub(r"\n{3,}", "\n\n", text))
    if rule.remove_urls_emails:
        text = _URL.sub("", _EMAIL.sub("", text))
    return text


def chunk_by_rule(text: str, spans: Spans, rule: Rule) -> list[Chunk]:
    """Chunks of ``text`` under ``rule`` (its ``max_tokens`` already within the embedder's)."""
    if rule.separator is None:
        if rule.remove_extra_spaces or rule.remove_urls_emails:
            text = clean(text, rule)
        return chunk_text(text, spans, rule.max_tokens, rule.overlap)
    overlap = max(0, min(rule.overlap, rule.max_tokens // 2))
    chunks: list[Chunk] = []
    for part in clean(text, rule).replace("\r\n", "\n").split(rule.separator):
        if not part.strip():
            continue
        for piece in _split_long(part.strip(), spans, rule.max_tokens, overlap):
            if piece:
                chunks.append(Chunk(len(chunks) + 1, piece, "", len(spans(piece))))
    return chunks
