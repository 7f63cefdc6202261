"""Document bytes -> text, keeping structure as Markdown headings where the format has it.

Blocking (pypdf can take seconds on a large file): the service runs it in a worker thread.
"""

from __future__ import annotations

import csv
import io
from pathlib import PurePath

EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv")


class UnsupportedDocument(ValueError):
    pass


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def html_to_text(html: str) -> str:
    """HTML to Markdown (headings stay headings); scripts, styles and navigation dropped."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "form"]):
        tag.decompose()
    body = soup.body or soup
    return str(MarkdownConverter(heading_style="ATX", strip=["a", "img"]).convert_soup(body))


def pdf_to_text(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    return "\n\n".join(p for p in pages if p)


def docx_to_text(data: bytes) -> str:
    """Paragraphs in order; Word's Heading N styles become Markdown headings; tables as rows."""
    import docx

    document = docx.Document(io.BytesIO(data))
    out: list[str] = []
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name if para.style is not None else "") or ""
        if style.startswith("Heading") and style[7:].strip().isdigit():
            out.append("#" * min(6, int(style[7:])) + " " + text)
        elif style == "Title":
            out.append("# " + text)
        else:
            out.append(text)
    for table in document.tables:
        for row in table.rows:
            out.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n\n".join(out)


def csv_to_text(data: bytes) -> str:
    """One paragraph per row, ``column: value`` lines (so a row is retrievable on its own)."""
    text = _decode(data)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096])
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        return ""
    header, body = rows[0], rows[1:]
    if not body:
        return "; ".join(header)
    return "\n\n".join(
        "\n".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip())
        for row in body
    )


def to_text(filename: str, data: bytes) -> str:
    ext = PurePath(filename).suffix.lower()
    if ext in (".txt", ".md", ".markdown", ""):
        return _decode(data)
    if ext in (".html", ".htm"):
        return html_to_text(_decode(data))
    if ext == ".pdf":
        return pdf_to_text(data)
    if ext == ".docx":
        return docx_to_text(data)
    if ext == ".csv":
        return csv_to_text(data)
    raise UnsupportedDocument(f"{filename}: unsupported file type (use {', '.join(EXTENSIONS)})")
