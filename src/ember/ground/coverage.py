"""Does the evidence behind an answer speak about what the question asks?

The support check (:mod:`ember.ground.support`) asks whether a source states what an answer
sentence says. It cannot tell that a source about the 2021 edition does not answer a
question about 2022: a small model copies a true sentence from a topically close source, and
that sentence is well supported. This module checks the other direction, question to
evidence:

* the **evidence** of an answer sentence is the passage of its source that states the
  answer's new content (the source sentences sharing the most with what the answer adds to
  the question), with ``window`` sentences either side and the section heading;
* every **number** of the question (years, dates, editions; ``第七届`` counts as 7) must be
  in that evidence;
* the question's **terms** (jieba + lower-cased words, as BM25 indexes them; question words
  like 什么/多少/how/when left out) weighted by their IDF over the vector store must be found
  there for at least ``min_coverage`` of their weight, so rare names and terms count and
  common words barely do;
* the sentence stating the answer must not be about **another year** (it names years,
  none of them the question's: the passage around it may mention the asked year in passing);
* the answer must **add** something: a sentence whose terms all come from the question
  answers nothing, and a question asking when or how many is answered only by a number.

It is lexical and cheap, works the same for Chinese and English, and needs no model.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ember.ground.chunking import split_sentences
from ember.ground.lexical import terms
from ember.ground.support import numbers, units

# Words that ask rather than constrain, and names of what is asked for (时间, number): the
# evidence states the value, not the word, so it need not contain them. Words starting with
# 哪, 几, 什么 or 多少 ask too (``_asks``).
_QUESTION_WORDS = frozenset(
    [
        "何时",
        "何地",
        "如何",
        "怎么",
        "怎样",
        "是否",
        "谁",
        "为什么",
        "为何",
        "请问",
        "具体",
        "时候",
        "吗",
        "呢",
        "时间",
        "日期",
        "人数",
        "数量",
        "次数",
        "多久",
        "名字",
        "名称",
        "did",
        "does",
        "do",
        "done",
        "many",
        "much",
        "whom",
        "whose",
        "why",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "has",
        "have",
        "had",
        "there",
        "their",
        "its",
        "into",
        "about",
        "please",
        "tell",
        "me",
        "list",
        "give",
        "time",
        "date",
        "number",
        "amount",
        "name",
        "year",
        "day",
        "count",
        "type",
        "kind",
        "sort",
    ]
)
_ORDINAL = re.compile(r"第([零〇一二两三四五六七八九十百]+)")
_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_DIGIT |= {"六": 6, "七": 7, "八": 8, "九": 9}
_LATIN_WORD = re.compile(r"[a-z][a-z0-9]*")


def _chinese_number(text: str) -> int:
    """一 … 九百九十九 as an int (the forms ordinals take)."""
    total, current = 0, 0
    for char in text:
        if char == "百":
            total += (current or 1) * 100
            current = 0
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = current * 10 + _DIGIT[char]
    return total + current


def normalize(text: str) -> str:
    """Lower-cased, with Chinese ordinals in digits (第七届 → 第7届) so 7 and 七 meet."""
    return _ORDINAL.sub(lambda m: f"第{_chinese_number(m.group(1))}", text.lower())


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "ed", "ing", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _asks(word: str) -> bool:
    return word in _QUESTION_WORDS or word[:1] in "哪几" or word[:2] in ("什么", "多少")


def _asked_for(question: str) -> set[str]:
    """The word naming what a question word asks for (哪支**队伍**, what **team**; not after
    多少, which counts something the evidence names): the evidence states the value, so it
    need not name it."""
    import jieba

    words = [w for w in jieba.lcut(question) if w.strip() and w not in ("的", "of", "kind", "type")]
    return {
        after
        for word, after in itertools.pairwise(words)
        if word[:1] == "哪" or word[:2] == "什么" or word in ("what", "which", "whose", "how")
    }


def question_terms(question: str) -> list[str]:
    """The question's constraining terms at their finest segmentation (``香港立法会`` is
    dropped when ``香港`` and ``立法`` are there); numbers are left to :func:`numbers`,
    single characters and question words left out."""
    text = normalize(question)
    asked = _asked_for(text)
    found = [
        t
        for t in dict.fromkeys(terms(text))
        if len(t) > 1
        and not _asks(t)
        and numbers(t) != {t}
        and not any(t in word for word in asked)
    ]
    return [t for t in found if not any(o != t and o in t for o in found)]


def _found(term: str, text: str, stems: set[str]) -> bool:
    if _LATIN_WORD.fullmatch(term):
        return _stem(term) in stems
    return term in text


# A year: 1800-2099 standing alone or before 年/赛季/届 (not 1864只, 2000.5, 1900%).
_YEAR = re.compile(r"(?<![\d.])(?:1[89]|20)\d{2}(?=年|赛季|届|[^\d.,%\u4e00-\u9fff]|$)")
# Questions whose answer is a time or a quantity: the answer must state a number.
_ASKS_NUMBER = re.compile(
    r"多少|几|何时|什么时候|哪一?年|哪一?天|时间|日期|"
    r"\bwhen\b|\bhow (?:many|much|long|often|old|far)\b|\bwhat (?:year|date|time)\b",
    re.IGNORECASE,
)
_CHINESE_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十百千万亿]")


@dataclass(frozen=True)
class Evidence:
    """Where an answer sentence's new content is stated: the ``anchor`` sentence of the
    source, the ``passage`` around it (``window`` sentences either side, and the heading)."""

    anchor: str
    passage: str


@dataclass(frozen=True)
class Coverage:
    """How well one passage covers a question (``coverage`` is IDF-weighted, 0-1)."""

    evidence: str
    coverage: float
    missing_numbers: tuple[str, ...]
    missing_terms: tuple[str, ...]
    # Years the anchor sentence is about when none is the question's (2020 for 2021).
    other_years: tuple[str, ...] = ()

    def satisfies(self, min_coverage: float) -> bool:
        return not self.missing_numbers and not self.other_years and self.coverage >= min_coverage


def cover(question: str, evidence: str | Evidence, idf: Callable[[str], float]) -> Coverage:
    """How well ``evidence`` covers ``question``'s numbers and terms (a plain string is its
    own anchor and passage)."""
    if isinstance(evidence, str):
        evidence = Evidence(evidence, evidence)
    text = normalize(evidence.passage)
    stems = {_stem(w) for w in _LATIN_WORD.findall(text)}
    wanted = question_terms(question)
    missing = tuple(t for t in wanted if not _found(t, text, stems))
    total = sum(idf(t) for t in wanted)
    coverage = 1.0 if not total else 1.0 - sum(idf(t) for t in missing) / total
    asked = normalize(question)
    missing_numbers = tuple(sorted(numbers(asked) - numbers(text)))
    years, stated = set(_YEAR.findall(asked)), set(_YEAR.findall(evidence.anchor))
    other_years = tuple(sorted(stated)) if years and stated and not years & stated else ()
    return Coverage(evidence.passage, coverage, missing_numbers, missing, other_years)


def new_content(sentence: str, question: str) -> set[str]:
    """What ``sentence`` says beyond ``question``: its terms and numbers not in the question
    (question words aside)."""
    asked = normalize(question)
    said = normalize(sentence)
    found = {t for t in terms(said) if not _asks(t) and t not in asked}
    return found | (numbers(said) - numbers(asked))


def answers_in_kind(sentence: str, question: str) -> bool:
    """A question asking when or how many is answered only by a sentence that adds a number
    (digits or Chinese numerals)."""
    if not _ASKS_NUMBER.search(question):
        return True
    added = new_content(sentence, question)
    return any(any(c.isdigit() for c in t) or _CHINESE_NUMERAL.search(t) for t in added)


def evidence_passages(
    sentence: str, question: str, source: str, heading: str | None, window: int
) -> list[Evidence]:
    """The passages of ``source`` that state ``sentence``'s new content: each best-matching
    source sentence with ``window`` sentences either side (and the heading)."""
    parts = split_sentences(source) or [source]
    added = units(" ".join(new_content(sentence, question))) or units(sentence)
    overlaps = [len(units(part) & added) for part in parts]
    best = max(overlaps)
    prefix = f"{heading}\n" if heading else ""
    return [
        Evidence(parts[i], prefix + _join(parts[max(0, i - window) : i + window + 1]))
        for i, overlap in enumerate(overlaps)
        if overlap == best
    ]


def _join(sentences: Sequence[str]) -> str:
    """Sentences back into text: a space after Latin punctuation, none after Chinese."""
    return "".join(s + (" " if s[-1:].isascii() else "") for s in sentences).rstrip()


def idf_weights(size: int, frequencies: dict[str, int]) -> Callable[[str], float]:
    """BM25's IDF over ``size`` chunks (a term no chunk holds weighs the most)."""

    def idf(term: str) -> float:
        df = frequencies.get(term, 0)
        return math.log(1.0 + (size - df + 0.5) / (df + 0.5))

    return idf


def best_cover(
    question: str, passages: Iterable[Evidence], idf: Callable[[str], float]
) -> Coverage | None:
    """The passage covering ``question`` best (numbers and years first, then weight)."""
    scored = [cover(question, passage, idf) for passage in passages]
    return max(
        scored,
        key=lambda c: (-len(c.missing_numbers) - len(c.other_years), c.coverage),
        default=None,
    )
