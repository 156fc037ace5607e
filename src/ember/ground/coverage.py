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

* the statement must be about the question's **relation**: when the question asks for a
  number and the anchor sentence states several facts (``ChatGPT 月活 6亿, 年收入 37亿;
  豆包 月活 7116万, Kimi 紧随其后``), the question's terms that the anchor holds must be in
  the span stating the answer's number (from the start of its ``;`` part to the end of its
  ``,`` clause): 豆包's revenue is not answered by ChatGPT's, nor Kimi's users by 豆包's;
* every **code** of the question (A100, H100, GPT-4) must be in the evidence.

Two readings let real documents through without letting the near-misses in:

* **paraphrase**: a passage whose terms fall short but whose anchor is close to the
  question in the multilingual embedding (``PARAPHRASE_MIN``) covers it, numbers, codes,
  years and relation still checked, unless a missing term is one no chunk of the store
  holds (another village's name is no paraphrase of this one's);
* **another language**: an English question over a Chinese passage (or the reverse) shares no
  terms with it, so its coverage is that similarity (``CROSS_LINGUAL_MIN``), with numbers
  compared as values (600 million is 6亿, :mod:`ember.ground.quantities`) and codes exactly.

The lexical part is cheap and works the same for Chinese and English; the caller supplies
the similarities (``similarity``: question to anchor, 0 when unknown).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ember.ground.chunking import split_sentences
from ember.ground.lexical import terms
from ember.ground.quantities import missing_codes, unmatched_numbers
from ember.ground.support import numbers, script, units

# The question-to-anchor similarity (multilingual-e5, query vs passage) that stands in for
# terms: in another language always, in the same language when the terms fall short.
CROSS_LINGUAL_MIN = 0.78
PARAPHRASE_MIN = 0.86
# Below this share of its terms, a same-language passage is no paraphrase however close.
PARAPHRASE_FLOOR = 0.5

# Words that ask rather than constrain, and names of what is asked for (时间, 比例, number):
# the evidence states the value, not the word, so it need not contain them; and verbs and
# adverbs that carry no fact (需要, 进行, usually, only). Words starting with 哪, 几, 什么,
# 多少 or 多 + an adjective ask too (``_asks``).
_QUESTION_WORDS = frozenset(
    [
        "多大",
        "多高",
        "多长",
        "多远",
        "多重",
        "多快",
        "多久",
        "比例",
        "比率",
        "占比",
        "一年",
        "哪年",
        "可以",
        "能够",
        "需要",
        "进行",
        "达到",
        "可达",
        "大约",
        "大概",
        "普遍",
        "通常",
        "一般",
        "主要",
        "分别",
        "到底",
        "究竟",
        "只有",
        "只用",
        "仅有",
        "有关",
        "关于",
        "根据",
        "目前",
        "现在",
        "称为",
        "被称为",
        "usually",
        "typically",
        "generally",
        "according",
        "show",
        "shown",
        "showed",
        "use",
        "used",
        "using",
        "only",
        "just",
        "around",
        "approximately",
        "roughly",
        "share",
        "percentage",
        "proportion",
        "called",
        "known",
        "reach",
        "reached",
        "currently",
        "now",
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
_NUMERIC = re.compile(r"[\d.,%]+")


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
    return (
        word in _QUESTION_WORDS
        or word[:1] in "哪几"
        or word[:2] in ("什么", "多少")
        or (len(word) == 2 and word[0] == "多" and word[1] in "大高长远重快久宽深厚少")
    )


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
        and not _NUMERIC.fullmatch(t)
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
    # Codes of the question (H100, GPT-4) the evidence lacks.
    missing_names: tuple[str, ...] = ()
    # Question terms the anchor holds outside the span stating the answer's number.
    other_relation: tuple[str, ...] = ()
    # The question's similarity to the anchor (0 when not measured).
    similarity: float = 0.0
    # How the terms were judged: "terms", "paraphrase" (similarity, same language) or
    # "cross_lingual" (similarity, the question in another language).
    method: str = "terms"
    # Missing terms that no chunk of the store holds: a name the documents never use (石门村
    # where they speak of 青石村) is a near-miss, not a paraphrase.
    absent: tuple[str, ...] = ()

    def satisfies(self, min_coverage: float) -> bool:
        if self.missing_numbers or self.other_years or self.missing_names or self.other_relation:
            return False
        if self.method == "cross_lingual":
            return self.similarity >= CROSS_LINGUAL_MIN
        if self.coverage >= min_coverage:
            return True
        return (
            self.method == "paraphrase"
            and not self.absent
            and self.coverage >= PARAPHRASE_FLOOR
            and self.similarity >= PARAPHRASE_MIN
        )


def cover(
    question: str,
    evidence: str | Evidence,
    idf: Callable[[str], float],
    *,
    similarity: float = 0.0,
    answer: str | None = None,
) -> Coverage:
    """How well ``evidence`` covers ``question``'s numbers, codes and terms (a plain string
    is its own anchor and passage); ``similarity`` is the question's to the anchor,
    ``answer`` the sentence whose number the relation check places."""
    if isinstance(evidence, str):
        evidence = Evidence(evidence, evidence)
    text = normalize(evidence.passage)
    stems = {_stem(w) for w in _LATIN_WORD.findall(text)}
    cross = script(question) != script(evidence.passage)
    wanted = [] if cross else question_terms(question)
    missing = tuple(t for t in wanted if not _found(t, text, stems))
    total = sum(idf(t) for t in wanted)
    coverage = 1.0 if not total else 1.0 - sum(idf(t) for t in missing) / total
    asked = normalize(question)
    missing_numbers = tuple(sorted(unmatched_numbers(asked, text)))
    years, stated = set(_YEAR.findall(asked)), set(_YEAR.findall(evidence.anchor))
    other_years = tuple(sorted(stated)) if years and stated and not years & stated else ()
    names = tuple(missing_codes(question, evidence.passage))
    relation = () if cross or answer is None else other_relation(question, evidence.anchor, answer)
    method = "cross_lingual" if cross else "terms"
    if not cross and coverage < 1.0 and similarity >= PARAPHRASE_MIN:
        method = "paraphrase"
    unseen = idf("\uffff")  # the weight of a term no chunk holds
    absent = tuple(t for t in missing if idf(t) >= unseen)
    return Coverage(
        evidence.passage,
        coverage,
        missing_numbers,
        missing,
        other_years,
        names,
        relation,
        similarity,
        method,
        absent,
    )


_PART = re.compile(r"[;；]")
_CLAUSE_END = re.compile(r"[,，、:：]")


def statement_spans(anchor: str, answer: str) -> list[str]:
    """The spans of ``anchor`` that state one of ``answer``'s numbers: from the start of its
    ``;`` part to the end of its ``,`` clause (none when the anchor is one part of one
    clause: nothing to tell apart)."""
    parts = _PART.split(anchor)
    wanted = set(numbers(normalize(answer)))
    spans = []
    for part in parts:
        clauses = _CLAUSE_END.split(part)
        if len(parts) == 1 and len(clauses) == 1:
            return []
        for end, clause in enumerate(clauses):
            if wanted & numbers(normalize(clause)):
                spans.append("".join(clauses[: end + 1]))
    return spans


def other_relation(question: str, anchor: str, answer: str) -> tuple[str, ...]:
    """The question's terms that ``anchor`` holds but not in the span stating ``answer``'s
    number (only for questions asking when or how many: the value belongs to its clause)."""
    if not _ASKS_NUMBER.search(question):
        return ()
    added = numbers(normalize(answer)) - numbers(normalize(question))
    if not added:
        return ()
    spans = statement_spans(anchor, " ".join(sorted(added)))
    if not spans:
        return ()
    text = normalize(anchor)
    stems = {_stem(w) for w in _LATIN_WORD.findall(text)}
    held = [t for t in question_terms(question) if _found(t, text, stems)]
    gaps = []
    for span in spans:  # the span that holds the most of them
        span_text = normalize(span)
        span_stems = {_stem(w) for w in _LATIN_WORD.findall(span_text)}
        gaps.append(tuple(t for t in held if not _found(t, span_text, span_stems)))
    return min(gaps, key=len)


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
    sentence: str,
    question: str,
    source: str,
    heading: str | None,
    window: int,
    closest: Callable[[str, Sequence[str]], int] | None = None,
) -> list[Evidence]:
    """The passages of ``source`` that state ``sentence``'s new content: each best-matching
    source sentence with ``window`` sentences either side (and the heading). A sentence in
    another language than the source shares no words with it: ``closest(sentence,
    source_sentences)`` then names the one source sentence stating it (by embedding)."""
    parts = split_sentences(source) or [source]
    prefix = f"{heading}\n" if heading else ""
    if closest is not None and script(sentence) != script(source):
        indices = [closest(sentence, parts)]
    else:
        added = units(" ".join(new_content(sentence, question))) or units(sentence)
        overlaps = [len(units(part) & added) for part in parts]
        indices = [i for i, overlap in enumerate(overlaps) if overlap == max(overlaps)]
    return [
        Evidence(parts[i], prefix + _join(parts[max(0, i - window) : i + window + 1]))
        for i in indices
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
    question: str,
    passages: Iterable[Evidence],
    idf: Callable[[str], float],
    *,
    similarity: Callable[[str], float] | None = None,
    answers: Iterable[str] | None = None,
    min_coverage: float = 0.8,
) -> Coverage | None:
    """The passage covering ``question`` best: one that satisfies ``min_coverage`` first,
    then numbers, codes, years and relation, then weight. ``similarity`` gives the
    question's similarity to an anchor; ``answers[i]`` is the sentence of ``passages[i]``."""
    passages = list(passages)
    stated = list(answers) if answers is not None else [None] * len(passages)
    scored = [
        cover(
            question,
            passage,
            idf,
            similarity=similarity(passage.anchor) if similarity else 0.0,
            answer=answer,
        )
        for passage, answer in zip(passages, stated, strict=True)
    ]
    return max(
        scored,
        key=lambda c: (
            c.satisfies(min_coverage),
            -len(c.missing_numbers)
            - len(c.other_years)
            - len(c.missing_names)
            - len(c.other_relation),
            c.coverage,
            c.similarity,
        ),
        default=None,
    )
