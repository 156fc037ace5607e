"""Synthetic training data: question/answer pairs written by a local model from documents.

Documents are cut into passages on paragraph boundaries; for each passage the model is asked,
under a JSON schema (so its output always parses), for a few questions that the passage
answers, with the answers. Each pair is then checked (a real question, an answer of sensible
length whose words come from the passage, not a copy of the question) and pairs asking the
same question are kept once. What survives becomes OpenAI chat JSONL, ready for a job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def max_reply_tokens(count: int) -> int:
    """A token budget no reply under ``qa_schema(count)`` can exceed (a token is ≥ 1 char)."""
    return 440 * count


def qa_schema(count: int) -> dict[str, Any]:
    """The reply's JSON schema: at most ``count`` pairs, each question a question.

    Decoding follows it token by token, so a small model cannot run on past ``count`` pairs
    or write a statement where a question belongs; with every string bounded, the whole
    reply fits in ``max_reply_tokens(count)`` and always parses.
    """
    return {
        "type": "object",
        "properties": {
            "pairs": {
                "type": "array",
                "minItems": 1,
                "maxItems": count,
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string", "pattern": r"^[^\n]{7,159}[?？]$"},
                        "answer": {"type": "string", "minLength": 1, "maxLength": 240},
                    },
                    "required": ["question", "answer"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["pairs"],
        "additionalProperties": False,
    }


_WORD = re.compile(r"\w+", re.UNICODE)
_MIN_GROUNDING = 0.6


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    source: str  # the passage it came from

    def to_chat_line(self, system: str | None = None) -> str:
        messages = [{"role": "system", "content": system}] if system else []
        messages += [
            {"role": "user", "content": self.question},
            {"role": "assistant", "content": self.answer},
        ]
        return json.dumps({"messages": messages}, ensure_ascii=False)


def passages(text: str, max_chars: int = 1200, min_chars: int = 80) -> list[str]:
    """Paragraphs joined up to ``max_chars``; a longer paragraph is cut at sentence ends."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        while len(paragraph) > max_chars:
            cut = max(paragraph.rfind(". ", 0, max_chars), paragraph.rfind("。", 0, max_chars))
            cut = cut + 1 if cut > min_chars else max_chars
            pieces.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if paragraph:
            pieces.append(paragraph)
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) + len(piece) + 1 <= max_chars:
            merged[-1] = f"{merged[-1]}\n{piece}"
        else:
            merged.append(piece)
    return [p for p in merged if len(p) >= min_chars]


def prompt(passage: str, count: int) -> list[dict[str, str]]:
    return [
        {
            "role": "system",
            "content": "You write training data. Answer only with JSON.",
        },
        {
            "role": "user",
            "content": f"Passage:\n{passage}\n\nWrite {count} different questions that this "
            "passage answers, each with a short answer taken from the passage. Reply as "
            '{"pairs": [{"question": "...", "answer": "..."}]}.',
        },
    ]


def parse_pairs(text: str, passage: str) -> list[QAPair]:
    """The pairs in a model reply (invalid JSON gives none)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    pairs = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, list):
        return []
    return [
        QAPair(" ".join(p["question"].split()), " ".join(p["answer"].split()), passage)
        for p in pairs
        if isinstance(p, dict) and isinstance(p.get("question"), str)
        and isinstance(p.get("answer"), str)
    ]  # fmt: skip


def problem(pair: QAPair) -> str | None:
    """Why ``pair`` is not good training data, or None."""
    question, answer = pair.question, pair.answer
    if not question.endswith(("?", "？")):
        return "the question is not a question"
    if not 8 <= len(question) <= 300:
        return "the question is too short or too long"
    if not 1 <= len(answer) <= 600:
        return "the answer is empty or too long"
    if _key(question) == _key(answer):
        return "the answer repeats the question"
    words = _words(answer)
    if not words:
        return "the answer has no words"
    source = set(_words(pair.source))
    grounded = sum(1 for w in words if w in source) / len(words)
    if grounded < _MIN_GROUNDING:
        return "the answer is not taken from the passage"
    return None


def keep_good(pairs: Iterable[QAPair]) -> tuple[list[QAPair], dict[str, int]]:
    """Valid pairs, each question once; and how many were dropped, by reason."""
    kept: list[QAPair] = []
    seen: set[str] = set()
    dropped: dict[str, int] = {}
    for pair in pairs:
        reason = problem(pair)
        if reason is None and _key(pair.question) in seen:
            reason = "a duplicate question"
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        seen.add(_key(pair.question))
        kept.append(pair)
    return kept, dropped


def _words(text: str) -> list[str]:
    lowered = text.lower()
    words = _WORD.findall(lowered)
    # Chinese has no spaces: count characters as words.
    return [c for w in words for c in (list(w) if not w.isascii() else [w])]


def _key(text: str) -> str:
    return " ".join(_words(text))
