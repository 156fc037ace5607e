"""PERSON (English, by cue): names that the words around them announce.

Statistical NER misses names it has not seen, most of all non-English ones, so a few cues
that hold in any language's names catch them without a model:

* a title or a naming phrase before it: ``Mr.``/``Dr.``, ``my name is``, ``call me``,
  ``Name:``, ``maiden name is``, ``last name?``, ``Dear``, ``Regards,``;
* a relative or friend right before it: ``my kid Lukas``, ``her husband Tiago Reis``;
* a middle initial: ``Faina D. Yefremova``, ``Shane M Culp`` (capitalised word, one capital
  letter, capitalised word; without the dot, only when no lowercase word follows);
* a speaker label opening a line of dialogue, ``Nicole: ...``, when the text has at least two.

After a naming phrase the name may be lowercase ("call me borna"); otherwise its words are
capitalised. Words that only look like names there (``My name is John and``: "and"; labels
such as "User:", "Phone:") are not taken.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ember.guard.recognizer import Recognizer, word_set
from ember.guard.recognizers.person_en import COMMON_CAPITALISED
from ember.guard.registry import register

_NAME_WORD = r"[^\W\d_][^\W\d_'’-]*"
_CAP_WORD = r"(?=[^\W\d_])(?:[^\W\d_a-z])[^\W\d_'’-]*"  # checked for case in code too
_INITIAL = r"[^\W\d_a-z]\.?"

_TITLED = re.compile(
    rf"(?<![\w])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Dear)\.?[ ]+"
    rf"(?P<v>{_CAP_WORD}(?:[ ](?:{_INITIAL}[ ])?{_CAP_WORD}){{0,2}})"
)
_NAMED = re.compile(
    rf"(?:\bmy name is|\bmaiden name is|\b(?:first|last|given|family) name(?: is|\s*[?:：])|"
    rf"\bname(?:d)?\s*[:：]|\bcall(?:s)? me|\bcalled|"
    rf"\bregards,|\bsincerely,|\bcardholder\s*[:：]?|\bbilling address\s*[:：])[ \t]*\n?[ \t>]*"
    rf"(?P<v>{_NAME_WORD}(?:[ ](?:{_INITIAL}[ ])?{_NAME_WORD}){{0,2}})",
    re.IGNORECASE,
)
# "Ingrid K. Lindqvist" anywhere; "Shane M Culp" (no dot) only where no lowercase word follows,
# so "Plan B Options are ..." is not a name.
# A relative or friend named right after the word: "my son Lukas", "her husband Tiago Reis".
_KIN = re.compile(
    rf"\b(?:my|our|his|her|their|your) (?:kid|son|daughter|child|wife|husband|partner|"
    rf"brother|sister|mother|father|mom|mum|dad|friend|boss|colleague|neighbou?r|"
    rf"grandson|granddaughter|fianc[eé]e?|boyfriend|girlfriend|nephew|niece|cousin|uncle|aunt) "
    rf"(?P<v>{_CAP_WORD}(?:[ ]{_CAP_WORD})?)"
)
# The same titles written in lowercase ("mr. elliott", "ms. quinzia"), where the name may be too.
_TITLED_LOWER = re.compile(
    rf"(?<![\w])(?:mr|mrs|ms|miss|dr|prof)\.?[ ]+(?P<v>{_NAME_WORD}(?:[ ]{_NAME_WORD})?)"
)
_MIDDLE_INITIAL = re.compile(
    rf"(?<![\w.])(?P<v>{_CAP_WORD}[ ](?:[^\W\d_a-z]\.[ ]{_CAP_WORD}(?![\w])"
    rf"|[^\W\d_a-z][ ]{_CAP_WORD}(?![\w])(?![ ]+[a-z])))"
)
_SPEAKER = re.compile(rf"(?m)^[ \t>]*(?P<v>{_CAP_WORD})[ \t]*:(?=[ \t]*\S)")
LABELS = word_set(
    """
    User Bot Assistant Agent Customer System Human AI Q A Note Subject Date Time Phone Tel Fax
    Mobile Email E-mail Address Name Website Web Url Title Company Position Location Re From To
    Cc Bcc Attn Card Account Iban Ssn Dob Age Sex Gender Status Id Ref Order Total Price Item
    Summary Answer Question Example Warning Error Info Personal Hint Tip Step Output Input
    """
)
# Words a naming phrase may be followed by that are not names.
STOP_AFTER_CUE = word_set(
    "and or but is was the a an to of in on at for with from by as because so"
)


def _clean(value: str) -> str:
    """The name part of a cue match: stops at the first word that is not a name."""
    kept = []
    for word in value.split(" "):
        if word.lower() in STOP_AFTER_CUE:
            break
        kept.append(word)
    return " ".join(kept)


@register
class CuedPersonRecognizer(Recognizer):
    name = "person_cue"
    entity_type = "PERSON"
    languages = frozenset({"en"})

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        cues = (
            (_TITLED, 0.75),
            (_TITLED_LOWER, 0.7),
            (_NAMED, 0.7),
            (_KIN, 0.65),
            (_MIDDLE_INITIAL, 0.6),
        )
        for regex, score in cues:
            for match in regex.finditer(text):
                value = _clean(match.group("v"))
                first = value.split(" ")[0] if value else ""
                if not first or first.capitalize() in COMMON_CAPITALISED | LABELS:
                    continue
                start = match.start("v")
                yield start, start + len(value), score
        speakers = [m for m in _SPEAKER.finditer(text) if m.group("v").capitalize() not in LABELS]
        if len(speakers) >= 2:
            for match in speakers:
                if match.group("v").capitalize() not in COMMON_CAPITALISED:
                    yield match.start("v"), match.end("v"), 0.6
