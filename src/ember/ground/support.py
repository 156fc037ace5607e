"""Does a source support an answer sentence? Lexical overlap, backed by embedding similarity.

No NLI model ships on PyPI, so a sentence is checked against the sources it cites (all
retrieved sources if it cites none) with two signals:

* **lexical**: the share of the sentence's units found in the source, where units are
  lower-cased Latin words and numbers and Chinese character bigrams (robust to jieba's
  segmentation choices and to paraphrase that keeps the facts' words);
* **embedding**: the cosine similarity of the sentence (embedded as a query) to the
  source's stored passage vector.

A sentence is supported when ``lexical >= LEXICAL_ALONE``, or when ``lexical >=
LEXICAL_WITH_EMBEDDING`` and ``embedding >= EMBEDDING_MIN``. Numbers get a hard rule: a
number in the sentence that appears in no cited source makes it unsupported, because a
wrong number is the hallucination that matters most. ``bench/rag.py`` measures the share of
supported sentences on RGB.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ember.ground.chunking import split_sentences

LEXICAL_ALONE = 0.6
LEXICAL_WITH_EMBEDDING = 0.3
EMBEDDING_MIN = 0.82

_LATIN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_CITATION = re.compile(r"\s*[\[【]\s*(\d{1,2})(?:\s*[,，、]\s*\d{1,2})*\s*[\]】]")


def units(text: str) -> set[str]:
    """Latin words and numbers, and Chinese character bigrams (single characters alone)."""
    lowered = text.lower()
    found = set(_LATIN.findall(lowered))
    for run in _CJK.findall(lowered):
        if len(run) == 1:
            found.add(run)
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def lexical_support(sentence: str, source: str) -> float:
    wanted = units(sentence)
    if not wanted:
        return 1.0
    return len(wanted & units(source)) / len(wanted)


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def cited_numbers(sentence: str) -> list[int]:
    """Source numbers cited as ``[1]``, ``[1, 2]`` or ``【1】`` in ``sentence``."""
    out: list[int] = []
    for match in _CITATION.finditer(sentence):
        out.extend(int(n) for n in re.findall(r"\d{1,2}", match.group(0)))
    return out


def strip_citations(text: str) -> str:
    return _CITATION.sub("", text).strip()


@dataclass(frozen=True)
class SentenceSupport:
    sentence: str
    cited: tuple[int, ...]
    best_source: int | None  # 1-based number of the source that supports it best
    lexical: float
    embedding: float
    supported: bool


def judge(
    sentence: str,
    cited: Sequence[int],
    sources: Sequence[str],
    embedding: Sequence[float],
) -> SentenceSupport:
    """Check ``sentence`` against the sources it cites (or all of them).

    ``embedding[i]`` is the sentence's cosine similarity to source ``i + 1``.
    """
    candidates = [n for n in cited if 1 <= n <= len(sources)] or list(range(1, len(sources) + 1))
    best: tuple[float, float, int | None] = (0.0, 0.0, None)
    for number in candidates:
        lexical = lexical_support(sentence, sources[number - 1])
        similarity = embedding[number - 1] if number - 1 < len(embedding) else 0.0
        if (lexical, similarity) > best[:2]:
            best = (lexical, similarity, number)
    lexical, similarity, source = best
    supported = lexical >= LEXICAL_ALONE or (
        lexical >= LEXICAL_WITH_EMBEDDING and similarity >= EMBEDDING_MIN
    )
    evidence = " ".join(sources[n - 1] for n in candidates)
    if numbers(sentence) - numbers(evidence):
        supported = False
    return SentenceSupport(sentence, tuple(cited), source, lexical, similarity, supported)


def best_quote(sentence: str, source: str) -> str:
    """The sentence of ``source`` that shares the most with ``sentence`` (the quoted text)."""
    candidates = split_sentences(source) or [source]
    wanted = units(sentence)
    return max(candidates, key=lambda s: (len(units(s) & wanted), -len(s)))
