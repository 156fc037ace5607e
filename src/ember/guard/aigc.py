"""AI-generated content labels per GB 45438-2025 (人工智能生成合成内容标识方法).

Two kinds of label:

* **Implicit** (隐式标识), on every generation: metadata named ``AIGC`` with the fields of the
  standard's appendix, ``Label`` (``"1"``: AI-generated), ``ContentProducer`` (who generated
  it: the ``aigc_producer`` setting), ``ProduceID`` (this generation's id: Ember's request id,
  which is also the audit record's), ``ReservedCode1`` (here the SHA-256 of the generated text
  when it is known before the response is sent, so a copy can be checked against its label),
  ``ContentPropagator``/``PropagateID`` (filled by whoever passes the content on; Ember
  generates, so empty) and ``ReservedCode2``. The API returns it as the top-level
  ``ember.aigc`` object and the ``x-ember-aigc`` header (compact ASCII JSON); files Ember
  exports carry it through :func:`label_file`.
* **Explicit** (显式标识): a notice the reader sees ("本内容由人工智能生成 / AI-generated"),
  :class:`NoticeFilter` adds it at the start or end of generated text. Always shown in
  ``ember chat``; on the API only where the guard policy's ``aigc_notice`` turns it on (off by
  default, so machine clients' outputs and seeds stay byte-identical), and never inside
  structured output (JSON mode, tool calls), where the implicit label carries it.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

HEADER = "x-ember-aigc"
FIELDS = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)


def implicit_label(producer: str, produce_id: str, content: str | None = None) -> dict[str, str]:
    """The ``AIGC`` metadata object for one generation."""
    digest = "" if content is None else hashlib.sha256(content.encode("utf-8")).hexdigest()
    return {
        "Label": "1",
        "ContentProducer": producer,
        "ProduceID": produce_id,
        "ReservedCode1": digest,
        "ContentPropagator": "",
        "PropagateID": "",
        "ReservedCode2": "",
    }


def header_value(label: dict[str, str]) -> str:
    """The label as an HTTP header value: compact JSON, non-ASCII escaped."""
    return json.dumps(label, separators=(",", ":"), ensure_ascii=True)


def attach(body: dict[str, Any], label: dict[str, str]) -> dict[str, Any]:
    """Put the label in a response body's top-level ``ember`` object."""
    body.setdefault("ember", {})["aigc"] = label
    return body


class NoticeFilter:
    """An output filter adding the explicit notice before or after the generated text."""

    def __init__(self, notice: str, position: str = "end") -> None:
        self.notice = notice
        self.position = position
        self._started = False

    def feed(self, text: str) -> str:
        if self.position == "start" and text and not self._started:
            self._started = True
            return f"{self.notice}\n\n{text}"
        return text

    def flush(self) -> str:
        if self.position == "end":
            return f"\n\n{self.notice}"
        return ""


# --- files ------------------------------------------------------------------------------

_TEXT_COMMENT = {".md": ("<!-- AIGC: ", " -->"), ".html": ("<!-- AIGC: ", " -->")}
_TEXT_COMMENT[".htm"] = _TEXT_COMMENT[".html"]
_TEXT_COMMENT[".txt"] = ("AIGC: ", "")
_TEXT_COMMENT[".py"] = ("# AIGC: ", "")
_TEXT_COMMENT[".csv"] = ("# AIGC: ", "")


def label_file(path: Path, label: dict[str, str]) -> Path:
    """Embed the implicit label in an exported file; returns where the label went.

    JSON objects get a top-level ``"AIGC"`` key; Markdown, HTML, text, Python and CSV files a
    last line comment ``AIGC: {...}``; PNG images an ``iTXt`` chunk with keyword ``AIGC``.
    Any other format (a JSONL, a binary) gets a sidecar ``<name>.aigc.json`` next to it.
    """
    value = json.dumps(label, ensure_ascii=False, separators=(",", ":"))
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data["AIGC"] = label
            path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
            return path
    elif suffix in _TEXT_COMMENT:
        opening, closing = _TEXT_COMMENT[suffix]
        text = path.read_text(encoding="utf-8")
        newline = "" if not text or text.endswith("\n") else "\n"
        path.write_text(f"{text}{newline}{opening}{value}{closing}\n", encoding="utf-8")
        return path
    elif suffix == ".png":
        path.write_bytes(_png_with_text(path.read_bytes(), "AIGC", value))
        return path
    sidecar = path.with_name(path.name + ".aigc.json")
    sidecar.write_text(json.dumps({"AIGC": label}, ensure_ascii=False, indent=2), "utf-8")
    return sidecar


def read_label(path: Path) -> dict[str, str] | None:
    """The label :func:`label_file` left in or beside ``path``, or None."""
    sidecar = path.with_name(path.name + ".aigc.json")
    if sidecar.is_file():
        return dict(json.loads(sidecar.read_text(encoding="utf-8"))["AIGC"])
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return dict(data["AIGC"]) if isinstance(data, dict) and "AIGC" in data else None
    if suffix in _TEXT_COMMENT:
        opening, closing = _TEXT_COMMENT[suffix]
        for line in reversed(path.read_text(encoding="utf-8").splitlines()):
            if line.startswith(opening):
                return dict(json.loads(line[len(opening) : len(line) - len(closing)]))
        return None
    if suffix == ".png":
        found = _png_text(path.read_bytes()).get("AIGC")
        return dict(json.loads(found)) if found else None
    return None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    chunks, offset = [], len(_PNG_SIGNATURE)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def _png_with_text(data: bytes, keyword: str, text: str) -> bytes:
    """A PNG with one ``iTXt`` chunk (UTF-8 text) added before ``IEND``."""
    payload = keyword.encode("latin-1") + b"\x00\x00\x00" + b"\x00" + b"\x00" + text.encode()
    out = bytearray(_PNG_SIGNATURE)
    for kind, body in _png_chunks(data):
        if kind == b"IEND":
            out += _png_chunk(b"iTXt", payload)
        out += _png_chunk(kind, body)
    return bytes(out)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_text(data: bytes) -> dict[str, str]:
    found = {}
    for kind, body in _png_chunks(data):
        if kind == b"iTXt":
            keyword, _, rest = body.partition(b"\x00")
            # compression flag, method, language tag \0, translated keyword \0, text
            rest = rest[2:]
            _, _, rest = rest.partition(b"\x00")
            _, _, text = rest.partition(b"\x00")
            found[keyword.decode("latin-1")] = text.decode("utf-8")
    return found
