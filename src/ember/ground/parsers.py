"""File parsers: bytes in, sections (text, page, heading) out.

One parser per format, registered by file extension with :func:`parser`; adding a format is
adding a function here, or in a plugin package (``ember.plugins``). Pages (PDF) and headings
(Markdown, HTML, DOCX) are kept so that a citation can say where its text came from.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from ember.errors import UnsupportedFileError
from ember.ground import web_capture
from ember.plugins import PluginRegistry


@dataclass(frozen=True)
class Section:
    """A run of text with where it came from."""

    text: str
    page: int | None = None
    heading: str | None = None


Parser = Callable[[bytes], list[Section]]
PARSERS: PluginRegistry[Parser] = PluginRegistry("parser")


def parser(*extensions: str) -> Callable[[Parser], Parser]:
    """Decorator: register ``func`` as the parser for files ending in ``extensions``
    (lower case, with the dot: ``".pdf"``)."""

    def register(func: Parser) -> Parser:
        for extension in extensions:
            PARSERS.add(extension, func)
        return func

    return register


def supported_extensions() -> list[str]:
    return sorted(PARSERS)


def parse(filename: str, data: bytes) -> list[Section]:
    """Sections of ``data``, read by the parser registered for ``filename``'s extension."""
    extension = PurePath(filename).suffix.lower()
    func = PARSERS.get(extension)
    if func is None:
        raise UnsupportedFileError(
            f"Cannot read '{filename}': supported types are {', '.join(supported_extensions())}."
        )
    try:
        sections = func(data)
    except UnsupportedFileError:
        raise
    except Exception as exc:  # a parser library's own error: the file is unreadable
        raise UnsupportedFileError(
            f"Cannot read '{filename}' as {extension[1:]} ({type(exc).__name__})."
        ) from exc
    return [s for s in sections if s.text.strip()]


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (which covers GBK and GB2312)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnsupportedFileError("The file is not UTF-8 or GB18030 text.")


@parser(".txt", ".text", ".log")
def parse_text(data: bytes) -> list[Section]:
    """Plain text; a web capture without its menus and footers, in sections under its title
    and headings (``ember.ground.web_capture``)."""
    return [Section(s.text, heading=s.heading) for s in web_capture.sections(decode_text(data))]


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@parser(".md", ".markdown")
def parse_markdown(data: bytes) -> list[Section]:
    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []
    in_code = False
    for line in decode_text(data).splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _MD_HEADING.match(line)
        if match:
            sections.append(Section("\n".join(lines), heading=heading))
            heading, lines = match.group(2), []
        else:
            lines.append(line)
    sections.append(Section("\n".join(lines), heading=heading))
    return sections


@parser(".html", ".htm")
def parse_html(data: bytes) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    sections: list[Section] = []
    heading: str | None = None
    parts: list[str] = []
    body = soup.body or soup
    for element in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "td", "pre"]):
        text = element.get_text(" ", strip=True)
        if not text:
            continue
        if element.name and element.name[0] == "h" and element.name[1:].isdigit():
            sections.append(Section("\n".join(parts), heading=heading))
            heading, parts = text, []
        elif not element.find_parent(["li", "td", "pre"]) or element.name == "pre":
            parts.append(text)
    sections.append(Section("\n".join(parts), heading=heading))
    if not any(s.text.strip() for s in sections):  # no block tags: take all the text
        return [Section(body.get_text("\n", strip=True))]
    return sections


@parser(".pdf")
def parse_pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return [
        Section(page.extract_text() or "", page=number)
        for number, page in enumerate(reader.pages, start=1)
    ]


@parser(".docx")
def parse_docx(data: bytes) -> list[Section]:
    import docx

    document = docx.Document(io.BytesIO(data))
    sections: list[Section] = []
    heading: str | None = None
    parts: list[str] = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            sections.append(Section("\n".join(parts), heading=heading))
            heading, parts = paragraph.text.strip() or heading, []
        elif paragraph.text.strip():
            parts.append(paragraph.text)
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text.strip() for cell in row.cells))
    sections.append(Section("\n".join(parts), heading=heading))
    return sections


@parser(".csv", ".tsv")
def parse_csv(data: bytes) -> list[Section]:
    text = decode_text(data)
    dialect = csv.excel_tab if "\t" in text.split("\n", 1)[0] else csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    lines = [
        "; ".join(f"{name}: {value}" for name, value in zip(header, row, strict=False) if value)
        for row in body
    ]
    # One row a line: line breaks end sentences, so the chunker never cuts a row in half.
    return [Section("\n".join(lines))]


def _flatten(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}[{index}]")
    elif value is not None:
        yield f"{path}: {value}" if path else str(value)


@parser(".json", ".jsonl")
def parse_json(data: bytes) -> list[Section]:
    text = decode_text(data)
    try:
        documents = [json.loads(text)]
    except json.JSONDecodeError:
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [Section("\n".join(_flatten(document))) for document in documents]
