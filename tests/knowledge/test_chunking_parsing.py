"""Chunking (structure first, then tokens with overlap) and parsing of every file type."""

from __future__ import annotations

import io
import re

import docx
import pytest

from parlour.retrieval import parsing
from parlour.retrieval.chunking import chunk_text, sections
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
    out.write(b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
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
        ("a.html", b"<html><head><script>var x=1</script><style>p{}</style></head><body>"
         b"<nav>menu</nav><h2>Hours</h2><p>Open <b>9</b> to 5.</p></body></html>",
         ["## Hours", "Open **9** to 5."]),
        ("a.pdf", _pdf("Warranty lasts two years"), ["Warranty lasts two years"]),
        ("a.docx", _docx(), ["# Returns", "Items can be returned within 30 days.",
                              "Shipping | Free over 50 EUR"]),
        ("a.csv", b"product,price\nlamp,20\nchair,45\n", ["product: lamp\nprice: 20",
                                                          "product: chair\nprice: 45"]),
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
