"""Cutting sections into chunks sized in the embedder's tokens, at sentence ends.

Sentences end at Chinese (。！？；) and English (. ! ? ;) terminators and at line breaks;
a chunk is whole sentences up to ``max_tokens``, and the next chunk repeats the last
sentences of the previous one up to ``overlap_tokens``. A sentence longer than a chunk is
cut at the token budget. Chunks never cross a section, so each has one page and heading.
Chunking is deterministic: the same file and strategy give the same chunks, which is what
lets an interrupted ingestion resume by position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ember.ground.parsers import Section

TokenCounter = Callable[[str], int]

_SENTENCE_END = re.compile(
    r"(?<=[。！？；!?;])[”」』）)\"']*"  # CJK/Latin terminators and closing quotes
    r"|(?<=\.)(?=\s)"  # a period before whitespace
    r"|\n+"  # line breaks end sentences too (lists, tables, CSV rows)
)


@dataclass(frozen=True)
class Chunk:
    text: str
    tokens: int
    page: int | None
    heading: str | None


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with their terminators, whitespace-trimmed, none empty."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _joined(sentences: Sequence[str]) -> str:
    out = ""
    for sentence in sentences:
        # Chinese runs on without spaces; Latin words need one between sentences.
        if out and (out[-1].isascii() or sentence[0].isascii()):
            out += " "
        out += sentence
    return out


class Chunker:
    """Chunks of ``max_tokens`` with ``overlap_tokens`` of overlap, counted by ``count``."""

    def __init__(self, count: TokenCounter, *, max_tokens: int, overlap_tokens: int) -> None:
        if not 0 <= overlap_tokens <= max_tokens // 2:
            raise ValueError("overlap_tokens must be between 0 and half of max_tokens")
        self.count = count
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self._base = count("")  # the special tokens and prefix every count includes

    def tokens(self, text: str) -> int:
        return max(0, self.count(text) - self._base)

    def chunk(self, sections: Sequence[Section]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in sections:
            for text in self._chunk_text(section.text):
                chunks.append(Chunk(text, self.tokens(text), section.page, section.heading))
        return chunks

    def _pieces(self, sentence: str) -> list[tuple[str, int]]:
        """``sentence`` (cut into budget-sized pieces if too long) with token counts."""
        tokens = self.tokens(sentence)
        if tokens <= self.max_tokens:
            return [(sentence, tokens)]
        pieces: list[tuple[str, int]] = []
        rest = sentence
        while rest:
            # Guess the cut from the characters-per-token ratio, then shrink until it fits.
            size = max(1, int(len(rest) * self.max_tokens / max(1, self.tokens(rest))))
            while size > 1 and self.tokens(rest[:size]) > self.max_tokens:
                size = int(size * 0.9)
            piece, rest = rest[:size], rest[size:]
            pieces.append((piece, self.tokens(piece)))
        return pieces

    def _chunk_text(self, text: str) -> list[str]:
        pieces = [p for sentence in split_sentences(text) for p in self._pieces(sentence)]
        chunks: list[str] = []
        current: list[tuple[str, int]] = []
        size = 0
        fresh = 0  # pieces in ``current`` not already emitted in an earlier chunk
        for piece, tokens in pieces:
            if current and size + tokens > self.max_tokens:
                chunks.append(_joined([p for p, _ in current]))
                # Carry the tail of this chunk into the next one, up to the overlap.
                carried: list[tuple[str, int]] = []
                carried_size = 0
                for item in reversed(current):
                    if carried_size + item[1] > self.overlap_tokens or len(carried) + 1 >= len(
                        current
                    ):
                        break
                    carried.insert(0, item)
                    carried_size += item[1]
                while carried and carried_size + tokens > self.max_tokens:
                    carried_size -= carried.pop(0)[1]
                current, size, fresh = carried, carried_size, 0
            current.append((piece, tokens))
            size += tokens
            fresh += 1
        if current and fresh:
            chunks.append(_joined([p for p, _ in current]))
        return chunks
