"""What the words around a name-shaped span say about it: firm, place, street, or a person.

Statistical NER reads any capitalised words as a name. The English name recognizer asks this
module before it reports one, and drops the span when

* it has digits, a web address or a street word in it ("Hoge Wei 32", "Philip Bypass");
* it is part of a firm's name: a company word ends it or follows it ("Russell Investments",
  "Thomas and Sons"), or it is one of the bare surnames of a firm written the way law and
  accounting firms are ("Davis, Reynolds and Williamson" when the list is the subject of a
  singular verb, follows "the", "at", "for" or "of", stands on a line of its own, or a
  company word ends it;
  "Garcia-Roberson" alone), surnames being the names more Americans carry as a surname than
  as a given name (census shares, :func:`ember.guard.given_names.surname_dominant`);
* a verb of travel or residence puts a place there ("originally from X", "arrived at X",
  "I am in X"), or the words around it an organisation ("I work for X", "X is a design
  agency").

It also finds the other mentions of a person already found: once "Maciej Borkowski" is a
name, so is a later "Borkowski" standing alone, whatever NER thought of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ember.guard.given_names import given_names, surname_dominant
from ember.guard.recognizer import word_set

COMPANY_WORDS = word_set(
    """
    inc incorporated corp corporation ltd limited llc llp plc gmbh ag sa nv bv co company
    group holdings investments partners associates technologies solutions systems consulting
    bank capital foundation orchestra band ensemble choir quartet university college
    institute agency studios records labs media ventures industries enterprises sons
    brothers bros
    """
)
STREET_WORDS = word_set(
    """
    street st road rd avenue ave boulevard blvd bypass turnpike highway hwy parkway pkwy
    expressway freeway crossroad crossroads plaza
    """
)
_WORD = re.compile(r"[^\W\d_][^\W\d_'’]*")
_LETTERS = re.compile(r"[^\W\d_]+")
_COMPANY_AFTER = re.compile(r"(?:,? (?:and|&) |,? |-)(?P<w>[^\W\d_]+)\.?(?![\w-])")
_FIRM_ITEM = r"[^\W\d_a-z][^\W\d_\s'’,-]*"
_FIRM_LIST = re.compile(
    rf"(?<![\w-])(?P<l>{_FIRM_ITEM}(?:, {_FIRM_ITEM})+,? (?:and|&) {_FIRM_ITEM})(?![\w-])"
)
_FIRM_BEFORE = re.compile(r"\b(?:the|at|for|of)\s+$", re.IGNORECASE)
_LINE_END = re.compile(r"[ \t]*(?:\n|$)")
_FIRM_AFTER = re.compile(r"^(?:'s? )?\s*(?:is|was|has)\b")
# "I work for Thinknum", "Coden is a design agency": an organisation's name.
_EMPLOYER_BEFORE = re.compile(r"\b(?:work|works|worked|working) (?:for|at)\s+$", re.IGNORECASE)
_ORGANISATION_AFTER = re.compile(
    r"(?:['’]s)? (?:is|was) (?:an?|the) (?:[\w-]+ ){0,3}(?:agency|company|firm|bank|start-?up|"
    r"brand|corporation|business|nonprofit|non-profit|charity|organi[sz]ation|manufacturer|"
    r"retailer|provider|platform|app|website|consultancy|publisher|band|501)\b"
)
_PLACE_BEFORE = re.compile(
    r"(?:\boriginally from|\b(?:moved|moving|came|come|flew|fly|flying|travell?ed|returned|"
    r"drove|arrived|arriving|relocated) (?:here |back |over )?(?:to|from|at|in)|"
    r"\b(?:I am|I'm|we are|we're|based|located) in)\s+$",
    re.IGNORECASE,
)


def firm_ranges(text: str) -> list[tuple[int, int]]:
    """Where ``text`` names firms after their partners' surnames ("Davis, Reynolds and
    Williamson"; "Ramsey-Johnson")."""
    dominant = surname_dominant()
    found = []
    for match in _FIRM_LIST.finditer(text):
        items = [w for w in re.split(r",? (?:and|&) |, ", match.group("l")) if w]
        if not all(w.lower() in dominant for w in items):
            continue
        before = _FIRM_BEFORE.search(text, max(0, match.start() - 6), match.start())
        after = text[match.end() : match.end() + 12]
        company = _COMPANY_AFTER.match(text, match.end())
        # A line of its own, as in a letterhead or signature: "Barnett, Melton and Garcia".
        line_start = text.rfind("\n", 0, match.start()) + 1
        own_line = not text[line_start : match.start()].strip(" \t>*•·?") and _LINE_END.match(
            text, match.end()
        )
        if (
            before
            or own_line
            or _FIRM_AFTER.match(after)
            or (company and company.group("w").lower() in COMPANY_WORDS)
        ):
            found.append(match.span())
    for match in re.finditer(r"(?<![\w-])([^\W\d_]+)-([^\W\d_]+)(?![\w-])", text):
        if match.group(1).lower() in dominant and match.group(2).lower() in dominant:
            found.append(match.span())
    return found


def not_a_person(text: str, start: int, end: int, firms: list[tuple[int, int]]) -> bool:
    """Whether the words in and around ``text[start:end]`` say it is no person's name."""
    value = text[start:end]
    if any(c.isdigit() for c in value) or "/" in value or "@" in value:
        return True
    if re.search(r"\.[^\W\d_]", value) and " " not in value:  # a domain: "WholePrices.ch"
        return True
    words = _WORD.findall(value)
    if not words:
        return True
    last = words[-1].lower()
    if last in STREET_WORDS or last in COMPANY_WORDS:
        return True
    company = _COMPANY_AFTER.match(text, end)
    if company and company.group("w").lower() in COMPANY_WORDS:
        return True
    if any(s <= start and end <= e for s, e in firms):
        return True
    if _ORGANISATION_AFTER.match(text, end):
        return True
    if (
        len(words) == 1
        and words[0].lower() not in given_names()
        and _EMPLOYER_BEFORE.search(text, max(0, start - 20), start)
    ):
        return True
    return _PLACE_BEFORE.search(text, max(0, start - 30), start) is not None and not text[
        end:
    ].startswith(("'s", "’s"))


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """The span widened to whole hyphenated words ("Hauta" of "Hauta-aho" -> "Hauta-aho")."""
    while start > 1 and text[start - 1] == "-" and text[start - 2].isalpha():
        start -= 2
        while start > 0 and text[start - 1].isalpha():
            start -= 1
    while end + 1 < len(text) and text[end] == "-" and text[end + 1].isalpha():
        end += 2
        while end < len(text) and text[end].isalpha():
            end += 1
    return start, end


def other_mentions(
    text: str,
    names: list[tuple[int, int]],
    taken: list[tuple[int, int]],
    common: frozenset[str],
) -> Iterator[tuple[int, int]]:
    """Other mentions of the words of names found with two or more words, outside ``taken``:
    "... directed by Maciej Borkowski and starring Borkowski". Words in ``common`` ("Will")
    and short ones are not followed."""
    words = {
        word
        for start, end in names
        if len(found := _WORD.findall(text[start:end])) >= 2
        for word in found
        if len(word) > 2 and word[0].isupper() and not word.isupper() and word not in common
    }
    if not words:
        return
    for match in _LETTERS.finditer(text):
        start, end = match.span()
        if (
            match.group() in words
            and not (start and (text[start - 1].isalnum() or text[start - 1] in "-_"))
            and not (end < len(text) and (text[end].isalnum() or text[end] in "-_"))
            and not any(s < end and start < e for s, e in taken)
        ):
            yield start, end


# Cues that only people fit: the subject of a verb of speech, feeling or residence ("Enrico
# shouted", "Zak lives on"), the speaker after "said" ("said Maslin to Antonio"), someone
# addressed ("Vide, can I ...", "..., Brandon!"), someone's relatives ("Asya's kid").
_CAP = r"[^\W\d_a-z][^\W\d_\s'’-]*"
_SUBJECT = re.compile(
    rf"(?<![\w'’-])(?P<v>{_CAP}(?: {_CAP})?) (?:lives|lived|shouted|yelled|screamed|whispered|"
    rf"sighed|nodded|smiled|laughed|cried|wept|exclaimed|apologi[sz]ed|grew up|"
    rf"(?:is|was) (?:originally )?from|comes from|came from)\b"
)
_SPEAKER = re.compile(
    rf"\b(?:said|says|asked|replied|added|whispered|shouted|exclaimed|explained) "
    rf"(?P<v>{_CAP}(?: {_CAP})?)(?=[ ]to\b|[.,!?;:\"”]|$)"
)
_SPOKEN_TO = re.compile(
    rf"\b(?:said|says|whispered|shouted|replied) (?:{_CAP} )?to (?P<v>{_CAP})(?=[.,!?;:\"”]|$)"
)
_ADDRESSED = re.compile(
    rf"(?:^|(?<=[.!?] )|(?<=\n))(?P<v>{_CAP}), (?:can|could|would|will|please|do|did|are|have)\b"
    rf"|, (?P<w>{_CAP})[!?](?=\s|$)"
)
_RELATIVE_OF = re.compile(
    rf"(?<![\w-])(?P<v>{_CAP})['’]s (?:kids?|son|daughter|child|children|wife|husband|mother|"
    rf"father|mom|mum|dad|brother|sister|parents|family|grandson|granddaughter|funeral|"
    rf"birthday)\b"
)


def person_cues(text: str) -> Iterator[tuple[int, int]]:
    """Capitalised words that the words around them make a person (before any check of the
    words themselves: the caller drops dictionary words and common sentence openers)."""
    for regex in (_SUBJECT, _SPEAKER, _SPOKEN_TO, _ADDRESSED, _RELATIVE_OF):
        for match in regex.finditer(text):
            yield match.span("v") if match.group("v") is not None else match.span("w")
