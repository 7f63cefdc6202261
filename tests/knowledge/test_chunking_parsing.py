"""Chunking (structure first, then tokens with overlap) and parsing of every file type."""

from __future__ import annotations

import io
import re
from typing import Any

import docx
import pytest

from parlour.retrieval import parsing
from parlour.retrieval.chunking import (
    Rule,
    check_process_rule,
    chunk_by_rule,
    chunk_text,
    rule_of,
    sections,
)
from parlour.retrieval.fusion import Weights, fuse


def words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def test_sections_follow_headings_not_code_comments() -> None:
    text = "intro\n\n# A\n\npara one\n\npara two\n\n```\n# not a heading\n```\n## B\nlast"
    got = [(s.title, len(s.paragraphs)) for s in sections(text)]
    assert got == [("", 1), ("A", 3), ("B", 1)]


def test_chunks_pack_paragraphs_and_never_cross_sections() -> None:
    text = "# One\n\n" + "\n\n".join(f"p{i} " + "w " * 8 for i in range(6)) + "\n\n# Two\n\nx y"
    chunks = chunk_text(text, words, max_tokens=30, overlap=0)
    assert [c.position for c in chunks] == list(range(1, len(chunks) + 1))
    assert all(c.tokens <= 30 for c in chunks)
    assert chunks[-1].title == "Two" and chunks[-1].content == "x y"
    assert {c.title for c in chunks[:-1]} == {"One"}
    assert len({c.hash for c in chunks}) == len(chunks)


def test_long_paragraph_is_cut_into_overlapping_token_windows() -> None:
    text = " ".join(f"t{i}" for i in range(100))
    chunks = chunk_text(text, words, max_tokens=40, overlap=10)
    assert all(c.tokens <= 40 for c in chunks)
    first, second = chunks[0].content.split(), chunks[1].content.split()
    assert first[-10:] == second[:10]
    assert chunks[-1].content.split()[-1] == "t99"


def test_chunks_fit_the_model_tokenizer(embedders) -> None:  # type: ignore[no-untyped-def]
    model = embedders.get("local:all-MiniLM-L6-v2")
    text = "Heavy words: " + " ".join("antidisestablishmentarianism" for _ in range(300))
    for chunk in chunk_text(text, model.spans, max_tokens=model.max_tokens, overlap=20):
        assert len(model.spans(chunk.embed_text)) <= model.max_tokens


def test_weighted_fusion_keeps_strong_dense_hit_on_top() -> None:
    dense = {"a": 0.80, "b": 0.30, "c": 0.35}
    keyword = {"b": 9.0, "c": 3.0, "a": 0.5}
    ranked = [sid for sid, _ in fuse(dense, keyword, Weights(0.8, 0.2))]
    assert ranked[0] == "a"


def _pdf(text: str) -> bytes:
    """A minimal one-page PDF with ``text`` in Helvetica."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _docx() -> bytes:
    document = docx.Document()
    document.add_heading("Returns", level=1)
    document.add_paragraph("Items can be returned within 30 days.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Shipping", "Free over 50 EUR"
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.txt", "plain text, ünïcode".encode(), ["plain text, ünïcode"]),
        ("a.md", b"# Title\n\nbody", ["# Title", "body"]),
        (
            "a.html",
            b"<html><head><script>var x=1</script><style>p{}</style></head><body>"
            b"<nav>menu</nav><h2>Hours</h2><p>Open <b>9</b> to 5.</p></body></html>",
            ["## Hours", "Open **9** to 5."],
        ),
        ("a.pdf", _pdf("Warranty lasts two years"), ["Warranty lasts two years"]),
        (
            "a.docx",
            _docx(),
            ["# Returns", "Items can be returned within 30 days.", "Shipping | Free over 50 EUR"],
        ),
        (
            "a.csv",
            b"product,price\nlamp,20\nchair,45\n",
            ["product: lamp\nprice: 20", "product: chair\nprice: 45"],
        ),
    ],
)
def test_every_file_type_parses(name: str, data: bytes, expected: list[str]) -> None:
    text = parsing.to_text(name, data)
    for piece in expected:
        assert piece in text, text
    assert "var x" not in text and "menu" not in text


def test_unknown_extension_is_refused() -> None:
    with pytest.raises(parsing.UnsupportedDocument):
        parsing.to_text("x.exe", b"MZ")


CUSTOM = {
    "mode": "custom",
    "rules": {
        "pre_processing_rules": [
            {"id": "remove_extra_spaces", "enabled": True},
            {"id": "remove_urls_emails", "enabled": True},
        ],
        "segmentation": {"separator": "\\n###\\n", "max_tokens": 60, "chunk_overlap": 5},
    },
}


def test_a_custom_rule_cuts_at_its_separator_and_cleans() -> None:
    rule = rule_of(check_process_rule(CUSTOM), 240, 40)
    assert rule == Rule(60, 5, "\n###\n", True, True)
    text = "first   part, mail a@b.io\n###\nsecond at https://x.example/y\n###\n\n###\n" + " ".join(
        f"w{i}" for i in range(150)
    )
    chunks = chunk_by_rule(text, words, rule)
    assert [c.content for c in chunks[:2]] == ["first part, mail", "second at"]
    assert all(c.tokens <= 60 and c.title == "" for c in chunks)
    assert len(chunks) == 2 + 3  # 150 words in windows of 60 sharing about 5
    assert chunks[2].content.split()[-5:] == chunks[3].content.split()[:5]


def test_automatic_or_no_rule_is_the_bases_structure_chunking() -> None:
    assert check_process_rule({"mode": "automatic", "rules": {"x": 1}}) == {
        "mode": "automatic",
        "rules": {},
    }
    rule = rule_of({"mode": "automatic", "rules": {}}, 30, 0)
    assert rule == rule_of(None, 30, 0) == Rule(30, 0)
    text = "# One\n\n" + "\n\n".join(f"p{i} " + "w " * 8 for i in range(6))
    assert chunk_by_rule(text, words, rule) == chunk_text(text, words, 30, 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": None}, "Process rule mode is required"),
        ({"mode": "magic"}, "Process rule mode is invalid"),
        ({"rules": None}, "Process rule rules is required"),
        ({"rules": ["x"]}, "Process rule rules is invalid"),
        ({"pre_processing_rules": None}, "Process rule pre_processing_rules is required"),
        ({"pre_processing_rules": [{"id": "nope", "enabled": True}]}, "id is invalid"),
        ({"pre_processing_rules": [{"id": "remove_extra_spaces"}]}, "enabled is required"),
        ({"pre_processing_rules": [{"id": "remove_urls_emails", "enabled": 1}]}, "invalid"),
        ({"segmentation": None}, "Process rule segmentation is required"),
        ({"separator": ""}, "Process rule segmentation separator is required"),
        ({"separator": 3}, "Process rule segmentation separator is invalid"),
        ({"max_tokens": None}, "Process rule segmentation max_tokens is required"),
        ({"max_tokens": "100"}, "Process rule segmentation max_tokens is invalid"),
        ({"max_tokens": 49}, "Custom segment length should be between 50 and 4000."),
        ({"max_tokens": 4001}, "Custom segment length should be between 50 and 4000."),
        ({"chunk_overlap": -1}, "Process rule segmentation chunk_overlap is invalid"),
        ({"chunk_overlap": 61}, "larger chunk overlap (61) than chunk size (60)"),
    ],
)
def test_a_bad_rule_is_refused_with_difys_message(change: dict[str, object], message: str) -> None:
    raw: dict[str, Any] = {**CUSTOM, "rules": {**CUSTOM["rules"]}}  # type: ignore[dict-item]
    raw["rules"]["segmentation"] = {**raw["rules"]["segmentation"]}
    for key, value in change.items():
        if key in ("mode", "rules"):
            raw[key] = value
        elif key in ("pre_processing_rules", "segmentation"):
            raw["rules"][key] = value
        else:
            raw["rules"]["segmentation"][key] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        check_process_rule(raw)


def test_a_very_long_heading_is_clipped_so_heading_and_chunk_fit_together() -> None:
    heading = " ".join(f"h{i}" for i in range(50))
    text = f"# {heading}\n\n" + " ".join(f"w{i}" for i in range(100))
    chunks = chunk_text(text, words, max_tokens=40, overlap=0)
    assert all(len(words(c.embed_text)) <= 40 for c in chunks)
    assert chunks[0].title == " ".join(f"h{i}" for i in range(20))
    short = chunk_text("# Short title\n\nbody", words, max_tokens=40, overlap=0)
    assert short[0].title == "Short title"
