"""What the words around a name-shaped span say: firms, places, streets, other mentions.

The functions are pure (census lists only, no spaCy), so each row states the whole verdict.
"""

from __future__ import annotations

import pytest

from ember.guard.name_context import (
    firm_ranges,
    not_a_person,
    other_mentions,
    person_cues,
    whole_words,
)


@pytest.mark.parametrize(
    ("text", "firm"),
    [
        # partners' surnames written as a firm: after "the", "at", "for", "of", before a
        # singular verb or a company word
        ("The Baker, Hughes and Lambert Orchestra played.", "Baker, Hughes and Lambert"),
        ("Mullins, Hargrove and Thornton is a consulting firm.", "Mullins, Hargrove and Thornton"),
        ("She spent a year at Foster, Graves and Whitaker.", "Foster, Graves and Whitaker"),
        ("Fees of Harmon, Reyes & Whitfield LLP rose.", "Harmon, Reyes & Whitfield"),
        ("Pearson-Whitfield is hiring.", "Pearson-Whitfield"),
        ("Olga Berg\n> Harmon, Reyes and Whitfield\n> 12 Elm St", "Harmon, Reyes and Whitfield"),
        ("Greetings from Harmon, Reyes and Whitfield", None),  # not alone on its line
        # near-misses: people, not firms
        ("The founders were Kowalski, Becker and Vasquez.", None),  # plural verb, no cue
        ("At dinner: Mary, Teresa and Jodi.", None),  # given names
        ("The kids Oskari, Lukas and Tiago are here.", None),
        ("Jean-Pierre called.", None),
    ],
)
def test_firm_ranges(text: str, firm: str | None) -> None:
    assert [text[s:e] for s, e in firm_ranges(text)] == ([firm] if firm else [])


@pytest.mark.parametrize(
    ("text", "name", "verdict"),
    [
        # not a person: digits, web addresses, street and company words, firms, places
        ("He lives on Joaquin Suarez 2906.", "Joaquin Suarez 2906", True),
        ("See https://BrightWidgets.io/ now", "https://BrightWidgets.io/", True),
        ("Mail BrightWidgets.io today", "BrightWidgets.io", True),
        ("Turn left into Philip Bypass", "Philip Bypass", True),
        ("Kessler Investments is hiring.", "Kessler Investments", True),
        ("Hartley and Sons sells timber.", "Hartley", True),
        ("Hartley & Co sells timber.", "Hartley", True),
        ("Mullins, Hargrove and Thornton is a consulting firm.", "Hargrove", True),
        ("I am originally from Kallavere.", "Kallavere", True),
        ("The train arrived at Oostkamp this morning.", "Oostkamp", True),
        ("Right now I'm in Den Haag, at the office.", "Den Haag", True),
        ("We moved here from Ruokolahti last year.", "Ruokolahti", True),
        ("I work for Brightlane since May.", "Brightlane", True),
        ("Zentrix is a design agency in Oslo.", "Zentrix", True),
        ("Zentrix's is a small family business.", "Zentrix", True),
        # people
        ("Ask Philip Bryce about it.", "Philip Bryce", False),
        ("Hartley sells timber.", "Hartley", False),
        ("I work for Thomas on weekends.", "Thomas", False),  # a given name
        ("I work for Maria Lopez now.", "Maria Lopez", False),
        ("Zentrix is a friend of mine.", "Zentrix", False),
        ("Hartley and Sam sell timber.", "Hartley", False),
        ("I got a letter from Ruokolainen.", "Ruokolainen", False),
        ("We returned to Maria's house.", "Maria", False),
        ("Dr. Harmon, Reyes and Whitfield were on call.", "Reyes", False),
        ("Email Sanna Virtanen today", "Sanna Virtanen", False),
    ],
)
def test_not_a_person(text: str, name: str, verdict: bool) -> None:
    start = text.index(name)
    end = start + len(name)
    assert not_a_person(text, start, end, firm_ranges(text)) is verdict


@pytest.mark.parametrize(
    ("text", "name", "mentions"),
    [
        (
            "A film directed by Maciej Borkowski and starring Borkowski.",
            "Maciej Borkowski",
            ["Borkowski"],
        ),
        (
            "Emmie Ström wrote it; early Ström is best, says Emmie.",
            "Emmie Ström",
            ["Ström", "Emmie"],
        ),
        # a one-word name, short or common words, and lowercase words are not followed
        ("Borkowski met the Borkowski family.", "Borkowski", []),
        ("Will Ng said: Will you call Ng?", "Will Ng", []),
        ("Anna Kowalska and anna kowalska", "Anna Kowalska", []),
    ],
)
def test_other_mentions(text: str, name: str, mentions: list[str]) -> None:
    start = text.index(name)
    found = [(start, start + len(name))]
    common = frozenset({"Will"})
    assert [text[s:e] for s, e in other_mentions(text, found, found, common)] == mentions


@pytest.mark.parametrize(
    ("text", "part", "whole"),
    [
        ("says Hauta-aho.", "Hauta", "Hauta-aho"),
        ("I talked to Jean-Pierre today", "Pierre", "Jean-Pierre"),
        ("Anna Smith-Jones-Lee left", "Jones", "Smith-Jones-Lee"),
        ("Anna - Smith left", "Anna", "Anna"),
    ],
)
def test_whole_words(text: str, part: str, whole: str) -> None:
    start = text.index(part)
    s, e = whole_words(text, start, start + len(part))
    assert text[s:e] == whole


@pytest.mark.parametrize(
    ("text", "cued"),
    [
        ('Enrico shouted at us: "Stop!"', ["Enrico"]),
        ("Asha Rao lives on the hill.", ["Asha Rao"]),
        ("Luiza is from Porto.", ["Luiza"]),
        ("Wow! said Maslin to Antonio.", ["Maslin", "Antonio"]),
        ("Vide, can I speak to your boss?", ["Vide"]),
        ("Don't go to town, Brandon!", ["Brandon"]),
        ("It was Franciska's kid.", ["Franciska"]),
        # near-misses: no cue, or the word after the verb is not a name
        ("The parcel lives in the shed.", []),  # lowercase subject
        ("He said yes to Monday plans", []),
        ("Franciska's car is red.", []),
        ("We sang, shouted and laughed.", []),
        ("Hello, World", []),
    ],
)
def test_person_cues(text: str, cued: list[str]) -> None:
    assert [text[s:e] for s, e in person_cues(text)] == cued
