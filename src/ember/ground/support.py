"""Does a source support an answer sentence? Lexical overlap, backed by embedding similarity.

No NLI model ships on PyPI, so a sentence is checked against the sources it cites (all
retrieved sources if it cites none) with two signals:

* **lexical**: the share of the sentence's units found in the source, where units are
  lower-cased Latin words and numbers and Chinese character bigrams (robust to jieba's
  segmentation choices and to paraphrase that keeps the facts' words);
* **embedding**: the cosine similarity of the sentence (embedded as a query) to the
  source's stored passage vector.

A sentence is supported when ``lexical >= LEXICAL_ALONE``, or when ``lexical >=
LEXICAL_WITH_EMBEDDING`` and ``embedding >= EMBEDDING_MIN``.

A sentence in another language than its source (an English answer from a Chinese article, or
the reverse) shares almost no units with it, so lexical overlap says nothing there: it is
supported when its similarity to the source's closest sentence (``sentence_similarity``,
the claim embedded as a query, each source sentence as a passage, multilingual-e5) reaches
``CROSS_LINGUAL_MIN``.

Numbers and codes get a hard rule in every language: a number whose value no cited source
states (600 million is stated by 6亿, :mod:`ember.ground.quantities`), or a code such as
``H100`` or ``GPT-4`` that no cited source contains, makes the sentence unsupported, because
a wrong number or a wrong name is the hallucination that matters most. ``bench/rag.py``
measures the share of supported sentences on RGB and on real documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ember.ground.chunking import split_sentences
from ember.ground.quantities import missing_codes, unmatched_numbers

LEXICAL_ALONE = 0.6
LEXICAL_WITH_EMBEDDING = 0.3
EMBEDDING_MIN = 0.82
# A claim against the closest sentence of a source in another language: measured on the
# seeds, a translation of a source sentence scores 0.82-0.86 against it and 0.73-0.79
# against its neighbours.
CROSS_LINGUAL_MIN = 0.8

_LATIN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
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


def script(text: str) -> str:
    """``zh`` when Chinese characters carry the text (one counts as much as three Latin
    letters: an English sentence naming 蚁天鉴 stays English), else ``en``."""
    chinese = sum(len(run) for run in _CJK.findall(text))
    return "zh" if chinese and chinese * 3 >= len(_LATIN_LETTER.findall(text)) else "en"


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
    # Judged against a source in another language (by sentence similarity).
    cross_lingual: bool = False
    # Numbers and codes of the sentence that no cited source states.
    unmatched: tuple[str, ...] = ()


def judge(
    sentence: str,
    cited: Sequence[int],
    sources: Sequence[str],
    embedding: Sequence[float],
    sentence_similarity: Sequence[float] | None = None,
) -> SentenceSupport:
    """Check ``sentence`` against the sources it cites (or all of them).

    ``embedding[i]`` is the sentence's cosine similarity to source ``i + 1``;
    ``sentence_similarity[i]`` its similarity to that source's closest sentence (needed for
    sources in another language than the sentence).
    """
    candidates = [n for n in cited if 1 <= n <= len(sources)] or list(range(1, len(sources) + 1))
    language = script(sentence)
    best: tuple[bool, float, float, int | None, bool] = (False, 0.0, 0.0, None, False)
    for number in candidates:
        source = sources[number - 1]
        if script(source) != language and sentence_similarity is not None:
            similarity = (
                sentence_similarity[number - 1] if number - 1 < len(sentence_similarity) else 0.0
            )
            lexical = lexical_support(sentence, source)
            ok = similarity >= CROSS_LINGUAL_MIN
            candidate = (ok, similarity, lexical, number, True)
        else:
            lexical = lexical_support(sentence, source)
            similarity = embedding[number - 1] if number - 1 < len(embedding) else 0.0
            ok = lexical >= LEXICAL_ALONE or (
                lexical >= LEXICAL_WITH_EMBEDDING and similarity >= EMBEDDING_MIN
            )
            candidate = (ok, lexical, similarity, number, False)
        if candidate[:3] > best[:3]:
            best = candidate
    supported, _, _, source_number, cross = best
    if source_number is None:
        lexical = similarity = 0.0
    elif cross:
        similarity, lexical = best[1], best[2]
    else:
        lexical, similarity = best[1], best[2]
    evidence = " ".join(sources[n - 1] for n in candidates)
    unmatched = tuple(unmatched_numbers(sentence, evidence) + missing_codes(sentence, evidence))
    if unmatched:
        supported = False
    return SentenceSupport(
        sentence, tuple(cited), source_number, lexical, similarity, supported, cross, unmatched
    )


def best_quote(sentence: str, source: str) -> str:
    """The sentence of ``source`` that shares the most with ``sentence`` (the quoted text)."""
    candidates = split_sentences(source) or [source]
    wanted = units(sentence)
    return max(candidates, key=lambda s: (len(units(s) & wanted), -len(s)))
