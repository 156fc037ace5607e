"""False premises: a question that asserts a number the documents contradict.

"Why was DeepSeek-R1's hallucination rate only 3.9%?" over an article that gives 14.3% must
get the article's figure with its citation: not an answer inside the premise, and not a bare
abstention. A question **asserts** a number when it asks why or builds on it (为什么, 为何,
既然, why, since, given that) and the number is a quantity, not a year or an ordinal (those
name *which* edition is asked about: a question about 2021 over a 2020 article is the near-miss
the coverage check refuses, not a premise to correct).

The correction is the source sentence that covers the question best (its terms, codes and
relation, :mod:`ember.ground.coverage`) while stating a number of its own, quoted verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from ember.ground.chunking import split_sentences
from ember.ground.coverage import Coverage, Evidence, cover
from ember.ground.quantities import claimed, stated, without_codes

_ASSERTS = re.compile(r"^\s*(?:为什么|为何|既然|why\b|since\b|given that\b)", re.IGNORECASE)
_YEAR = re.compile(r"(?<![\d.])(?:1[89]|20)\d{2}(?![\d.])")
_ORDINAL = re.compile(r"第\s*\d+")

LEAD = {
    "zh": "资料的说法与问题的前提不同：",
    "en": "The documents say otherwise: ",
}


def _plain(question: str) -> str:
    """The question without its years, ordinals and codes: what is left are quantities."""
    return _ORDINAL.sub(" ", _YEAR.sub(" ", without_codes(question)))


def asserted_numbers(question: str) -> list[str]:
    """The quantities a why/since question asserts (years and ordinals aside)."""
    if not _ASSERTS.search(question):
        return []
    plain = _plain(question)
    return [format(value.normalize(), "f") for value, _ in claimed(plain)]


def contradicted(question: str, sources: Sequence[str]) -> list[str]:
    """The asserted quantities no source states (empty: no premise to correct)."""
    asserted = asserted_numbers(question)
    if not asserted:
        return []
    values = stated(" ".join(sources))
    plain = _plain(question)
    missing = [
        format(value.normalize(), "f")
        for value, raw in claimed(plain)
        if value.normalize() not in values and (raw is None or raw.normalize() not in values)
    ]
    return missing


def candidate_sentences(sources: Sequence[str]) -> list[tuple[int, str]]:
    """(1-based source number, sentence) for every source sentence that states a number."""
    return [
        (number, sentence)
        for number, source in enumerate(sources, start=1)
        for sentence in split_sentences(source)
        if claimed(sentence)
    ]


def correction(
    question: str,
    sources: Sequence[tuple[str, str | None]],
    idf: Callable[[str], float],
    similarity: Callable[[str, Sequence[str]], list[float]],
    min_coverage: float,
) -> tuple[int, str, Coverage] | None:
    """The source sentence that corrects ``question``'s premise: among the ``(text,
    heading)`` sources' sentences stating a number, the one covering the question best (its
    terms or, across languages, its similarity; codes, years and relation too; the asserted
    number aside). (1-based source number, sentence, its coverage), or None."""
    candidates = candidate_sentences([text for text, _ in sources])
    if not candidates:
        return None
    scores = similarity(question, [sentence for _, sentence in candidates])
    best: tuple[float, float, int, str, Coverage] | None = None
    for (number, sentence), score in zip(candidates, scores, strict=True):
        heading = sources[number - 1][1]
        evidence = Evidence(sentence, f"{heading}\n{sentence}" if heading else sentence)
        found = replace(cover(question, evidence, idf, similarity=score), missing_numbers=())
        if found.satisfies(min_coverage) and (best is None or (found.coverage, score) > best[:2]):
            best = (found.coverage, score, number, sentence, found)
    return None if best is None else best[2:]
