"""The PII in an uploaded document: what the guard's analyzer finds in the text that
ingestion reads from the file (``GET /v1/ember/files/{file_id}/pii``).

The file is parsed as ingestion parses it (``ember.ground.parsers``), so what is reported is
what a vector store holds and a grounded answer may quote; each section is analyzed with
the app's own analyzer, the one the request pipeline uses. Nothing is stored: the answer
follows the recognizers enabled now. Another tenant's file is a 404, as everywhere.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ember.core.request_context import ANONYMOUS, Caller
from ember.ground.parsers import parse
from ember.guard.analyzer import Analyzer
from ember.services.files import FileService

MAX_FINDINGS = 500  # listed one by one; the counts always cover every finding


def file_pii(
    files: FileService, analyzer: Analyzer, file_id: str, *, caller: Caller = ANONYMOUS
) -> dict[str, Any]:
    """Counts of PII by entity type in a file, and the findings (blocking: CPU-bound)."""
    record = files.get(file_id, caller=caller)
    sections = parse(record.filename, files.read(file_id, caller=caller))
    counts: Counter[str] = Counter()
    findings: list[dict[str, Any]] = []
    for section in sections:
        for span in analyzer.analyze(section.text):
            counts[span.type] += 1
            if len(findings) < MAX_FINDINGS:
                findings.append(
                    {
                        "type": span.type,
                        "text": span.text,
                        "score": round(span.score, 3),
                        "page": section.page,
                        "heading": section.heading,
                    }
                )
    return {
        "object": "ember.file.pii",
        "file_id": record.id,
        "filename": record.filename,
        "entities": dict(sorted(counts.items())),
        "total": sum(counts.values()),
        "findings": findings,
        "has_more": sum(counts.values()) > len(findings),
    }
