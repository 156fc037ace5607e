"""ADDRESS (Latin script): street addresses in the forms the world writes them.

Three shapes of street line, with the house number first or last:

* ``1600 Pennsylvania Avenue``: a number, then words ending in a street type;
* ``Rua do Arenque 1634``, ``Mellemvej 32``, ``Király u. 15``: a street type (a word such as
  Rua/Via/Rue/ul./Avenue, or a suffix such as -vej/-gata/-katu/-straße) and then the number;
* ``6750 Koskikatu 25``: a number, capitalised words and a number.

Military (``PSC 1234, Box 5678 / APO AE 09012``) and ``P.O. Box`` forms are matched as such.
A lead-in ("lives at", "address:", "ship to") lets a line through without a street type,
lowercase included. A street line then takes along what follows it on the same address:
unit (Apt./Suite/Unit/#), and up to four short comma- or line-separated parts made only of
capitalised words, codes and postal codes (city, state, country, ZIP); lines may open with
quote marks or bullets, and a blank line may come before a last "Country 12345" line.
A street named without a number counts after a lead-in, or after "on"/"along" when its type
is spelled out ("on Marina Fort Street"); at "the corner of A and B" the address spans both
streets. Near-misses such as
"page 3 of 12", "version 2 build 7", or a sentence with a number are not streets: function
words break a street line and the number must sit at one end of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from ember.guard.recognizer import Recognizer, word_set
from ember.guard.registry import register

STREET_TYPES = word_set(
    """
    street st avenue ave av avda avenida road rd boulevard blvd bd lane ln drive dr court ct
    way place pl square sq squares terrace close crescent parkway pkwy highway hwy circle cir
    trail path row walk gardens park parks alley loop pike plaza plz point pass union unions
    crossing ridge hill hills heights view views mews grove green vale hollow junction
    expressway freeway route rte rue rua via viale vicolo calle carrer camino paseo strada
    piazza piazzetta praça praca largo travessa alameda rambla ronda ul ulica aleja al u utca
    út ut tér ter köz koz körút krt sétány náměstí namesti třída trida nábřeží cesta ulice
    straße strasse str gasse weg allee platz ring damm ufer chaussee laan straat plein gracht
    kade singel dijk steeg vej gade gata gatan vägen vagen väg gränd stig veien vegen vei gate
    gaten katu tie kuja polku kaari väylä tori raitti rinne mäki mae plads torv stræde allé
    tee maantee puiestee põik iela prospekts gatve prospektas
    quai cours chemin impasse allée place odos leoforos οδός λεωφόρος quadra rkp rakpart útja
    gateway mall isle fort turnpike forge forges station harbor harbour shoal shoals spur
    springs summit throughway trace track tunnel underpass valley viaduct village ville vista
    knoll knolls landing lodge manor meadow meadows mill mills motorway mount neck orchard oval
    overpass prairie ramp ranch rapids shore shores skyway cape causeway creek crest curve dale
    divide estate estates falls ferry ford forest fork forks glen haven island lake lakes
    """
)
STREET_SUFFIXES = tuple(
    word_set(
        "straße strasse str gasse weg allee platz ring damm laan straat plein gracht vej gade "
        "gata gatan vägen vagen väg gränd veien vegen vei gate gaten katu tie kuja polku kaari "
        "väylä tori raitti rinne vænget vangen stræde plads torv"
    )
)
PARTICLES = word_set(
    "do da dos das de del della delle degli dello dei di dal dalla du des la le les lès sur "
    "sous van von der den het op ter am an im al el y e d' d’ nad pod upon"
)
FUNCTION_WORDS = word_set(
    """
    the a an and or of to in on at for with from by is are was were be been am me my you your
    i we he she they it its this that these those please meet send sent update lives live
    lived located office card number page version build chapter step item items year years
    old age room floor times minutes hours days weeks months about after before than then
    there here have has had will would can could should may might not no yes ok so but if
    """
)
SIGN_OFFS = word_set("thanks thank regards cheers best call see bye please sincerely love")
UNIT_WORDS = "Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|Box|Bldg|Building"
_UNIT_SET = frozenset(UNIT_WORDS.lower().split("|"))

_WORD = r"(?:[^\W\d_][\w'’-]*\.?)"
_NUM = r"(?:\d{1,6}[A-Za-z]?(?![\w-]))"
# A run of up to eight words and numbers from each word start; its prefixes are the candidates.
_RUN = re.compile(rf"(?<![\w.@/-])(?=(?P<c>(?:{_WORD}|{_NUM})(?:[ ](?:{_WORD}|{_NUM})){{0,7}}))")
_CONTRACTION = re.compile(r"['’](?:ll|re|ve|m|s|d|t)$", re.IGNORECASE)
_MILITARY = re.compile(
    r"(?<![\w])(?:(?:PSC|CMR|Unit) \d{3,5},? Box \d{3,5}|(?:USS|USNS|USNV|USCGC) [A-Z][\w-]+)"
    r"\s*\n?\s*(?:APO|FPO|DPO) (?:AA|AE|AP) \d{5}(?!\d)"
)
_PO_BOX = re.compile(r"(?<![\w])P\.? ?O\.? Box \d{1,6}(?!\d)", re.IGNORECASE)
_TOKENS = re.compile(rf"{_NUM}|{_WORD}")
# What may open a line of an address block: quoting and bullets ("> ", "* ", "• "), and the
# "?" an unknown bullet turns into after a lossy encoding.
_LINE_LEAD = r"[ \t>*•·?]*"
_UNIT = re.compile(
    rf"\.?(?:,? ?\n?{_LINE_LEAD})?(?:{UNIT_WORDS})\.? ?#?\w{{1,6}}(?![\w])|,? ?#\d{{1,6}}"
)
_PART = re.compile(rf"\.?(?:[ ]*,[ ]*|[ ]*\n{_LINE_LEAD},?[ ]*|[ ]+)(?P<p>[^\n,.?!;:]{{1,40}})")
# A blank line inside an address block only before its postal code line ("Estonia 62488").
_POSTAL_PART = re.compile(
    rf"\.?[ ]*\n{_LINE_LEAD}\n{_LINE_LEAD}"
    rf"(?P<p>[^\W\d_][^\n,.?!;:]{{0,30}}[ ]\d{{3,6}}(?:-\d{{3,4}})?)(?=[ \t]*(?:\n|$))"
)
_LEAD_IN = re.compile(
    r"(?:address(?:es)?|addr|lives?|lived|living|resides?|reside[sd]|located|situated|"
    r"meet me|sent|send|ship(?:ped)?|deliver(?:ed)?|mail(?:ed)?|moved|move|visit|find us|"
    r"corner of|office is|is at|is on|at the)\b[^.!?\n]{0,20}$",
    re.IGNORECASE,
)


# After "on", "along" ...: a street named without a number, its type spelled out in full.
_PLACE_WORD = re.compile(r"\b(?:on|along|down|off|onto|into|up|near)[ ]+$", re.IGNORECASE)
FULL_STREET_WORDS = word_set(
    # Not "drive", "court", "place": "on Google Drive", "on Supreme Court rulings".
    "street avenue road boulevard lane square terrace crescent parkway highway"
)
# "the corner of A and B": B is the cross street, capitalised words and maybe a number.
_CORNER = re.compile(r"\bcorner of[ ]+$", re.IGNORECASE)
_CROSS_STREET = re.compile(
    rf"\.?[ ]+(?:and|&)[ ]+(?P<s>(?:{_WORD}|{_NUM})(?:[ ](?:{_WORD}|{_NUM})){{0,4}})"
)


def _is_number(token: str) -> bool:
    return token[0].isdigit()


@lru_cache(maxsize=65536)
def _street_typed(word: str) -> bool:
    bare = word.lower().rstrip(".")
    if bare in STREET_TYPES:
        return True
    return any(bare.endswith(s) and len(bare) > len(s) + 2 for s in STREET_SUFFIXES)


def _capitalised(word: str) -> bool:
    return word[0].isupper()


def street_score(core: str, lead_in: bool, place_word: bool = False) -> float | None:
    """The score of a street-line candidate, or None when it is not one.

    ``lead_in``: a phrase such as "lives at" comes before it; ``place_word``: a preposition of
    place does ("on", "along"), which admits only named streets spelled out in full
    ("on Marina Fort Street").
    """
    tokens = _TOKENS.findall(core)
    words = [t for t in tokens if not _is_number(t)]
    if not words or len(words) > 5 or len(tokens) < 2:
        return None
    for word in words:
        bare = word.lower().rstrip(".")
        if bare in FUNCTION_WORDS or bare in _UNIT_SET or _CONTRACTION.search(word):
            return None
    # A dot inside the line ends a sentence unless it ends an abbreviated street type.
    # An initial is no sentence end either ("C. Beerninckstraat 88").
    if any(
        t.endswith(".") and not _street_typed(t) and not (len(t) == 2 and t[0].isupper())
        for t in tokens[:-1]
    ):
        return None
    number_first, number_last = _is_number(tokens[0]), _is_number(tokens[-1])
    if sum(map(_is_number, tokens)) > 3:
        return None
    typed = any(_street_typed(w) for w in words)
    named = all(_capitalised(w) or w.lower() in PARTICLES or _street_typed(w) for w in words)
    if typed and named and (number_first or number_last):
        return 0.7
    if number_first and number_last and named and _capitalised(words[0]):
        return 0.6
    if lead_in and (number_first or number_last):
        return 0.55
    if lead_in and named and _street_typed(tokens[-1]) and len(words) >= 2:
        return 0.5
    if place_word and named and tokens[-1].lower() in FULL_STREET_WORDS and len(words) >= 2:
        return 0.5
    return None


def _address_part(part: str) -> bool:
    """A city, state, country or postal code line: short, capitalised words and codes only."""
    tokens = part.split()
    if not tokens or len(tokens) > 5:
        return False
    for token in tokens:
        bare = token.strip("()")
        if not bare:
            return False
        if bare[0].isdigit():
            if not re.fullmatch(r"\d{3,6}(?:-\d{3,4})?", bare):
                return False
        elif not (bare[0].isupper() or bare.lower() in PARTICLES or bare == "nan"):
            return False
    return True


def extend(text: str, end: int) -> int:
    """The end of the address whose street line ends at ``end``."""
    unit = _UNIT.match(text, end)
    after_unit = unit is not None
    while unit is not None:
        end = unit.end()
        unit = _UNIT.match(text, end)
    for index in range(4):
        part = _PART.match(text, end) or _POSTAL_PART.match(text, end)
        if part is None:
            break
        separator = text[part.start() : part.start("p")]
        value = part.group("p").rstrip()
        if not value or not _address_part(value):
            break
        # Bare spaces join only codes ("NO 9100"), never free words after a street; after a
        # unit, a city that ends the line or sentence too ("Apt. 615 Moosleerau Switzerland").
        if (
            "," not in separator
            and "\n" not in separator
            and not _codes(value)
            and not (index == 0 and after_unit and _city_to_end(text, part.end("p"), value))
        ):
            break
        end = part.start("p") + len(value)
        # "Norway 2317", "IL 62704": a postal code after a place closes the address.
        tokens = value.split()
        if len(tokens) > 1 and tokens[-1][0].isdigit() and not tokens[0][0].isdigit():
            break
    return end


def _city_to_end(text: str, end: int, value: str) -> bool:
    """Capitalised place words (no sentence openers) up to a line or sentence end."""
    return bool(re.match(r"[ \t]*(?:$|\n|[.?!](?:\s|$))", text[end:])) and not any(
        word.lower() in FUNCTION_WORDS or word.lower() in SIGN_OFFS for word in value.split()
    )


def _codes(value: str) -> bool:
    return all(re.fullmatch(r"[A-Z]{2,3}|\d{3,6}", token) for token in value.split())


@register
class StreetAddressRecognizer(Recognizer):
    name = "street_address"
    entity_type = "ADDRESS"
    context = ("address", "lives at", "located at", "ship to", "deliver to")

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        found: list[tuple[int, int, float]] = []
        for regex in (_MILITARY, _PO_BOX):
            for match in regex.finditer(text):
                found.append((match.start(), extend(text, match.end()), 0.7))
        has_digit = any(c.isdigit() for c in text)
        for match in _RUN.finditer(text):
            run = match.group("c")
            if not (has_digit and any(c.isdigit() for c in run)) and not any(
                _street_typed(t) for t in run.split()
            ):
                continue
            start = match.start("c")
            lead_in = _LEAD_IN.search(text, max(0, start - 40), start) is not None
            place_word = _PLACE_WORD.search(text, max(0, start - 8), start) is not None
            tokens = list(_TOKENS.finditer(run))
            # Without a lead-in a street line has its number first or last: when the first
            # token is not a number, only lines ending in one can qualify.
            any_end = lead_in or place_word or (bool(tokens) and _is_number(tokens[0].group()))
            for token in reversed(tokens[1:]):  # the longest street line that qualifies
                if not any_end and not _is_number(token.group()):
                    continue
                end = token.end()
                score = street_score(run[:end], lead_in, place_word)
                if score is not None:
                    found.append((start, start + len(run[:end].rstrip(".")), score))
                    break
        kept: list[tuple[int, int, float]] = []
        for start, end, score in sorted(found, key=lambda f: (-(f[1] - f[0]), f[0])):
            if not any(start < e and s < end for s, e, _ in kept):
                kept.append((start, end, score))
        for start, end, score in kept:
            if _CORNER.search(text, max(0, start - 12), start):
                end = cross_street(text, end)
            yield start, extend(text, end), score


def cross_street(text: str, end: int) -> int:
    """The end of "A and B" at a corner, where A ends at ``end``: B is a street when its
    words are capitalised (or street types, particles) and at most one is a number."""
    match = _CROSS_STREET.match(text, end)
    if match is None:
        return end
    best = end
    tokens = list(_TOKENS.finditer(match.group("s")))
    for index, token in enumerate(tokens):
        word = token.group()
        if _is_number(word):
            if sum(map(_is_number, (t.group() for t in tokens[: index + 1]))) > 1:
                break
        elif word.lower().rstrip(".") in FUNCTION_WORDS or not (
            _capitalised(word) or word.lower() in PARTICLES or _street_typed(word)
        ):
            break
        # Like a street line, the span stops before a final dot (a sentence may end there).
        best = match.start("s") + token.end() - word.endswith(".")
        if word.endswith(".") and not _street_typed(word):
            break
    return best
