"""Sentence splitting, the support check and attribute filters: tables of cases."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ember.ground.chunking import Chunker, split_sentences
from ember.ground.coverage import (
    Evidence,
    answers_in_kind,
    cover,
    evidence_passages,
    idf_weights,
    new_content,
)
from ember.ground.filters import matches
from ember.ground.parsers import Section
from ember.ground.support import cited_numbers, judge, strip_citations


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "今天很好。我们走吧！你来吗？好的；走",
            ["今天很好。", "我们走吧！", "你来吗？", "好的；", "走"],
        ),
        ("He left. She stayed! Why? 3.5 stays", ["He left.", "She stayed!", "Why?", "3.5 stays"]),
        ("他说：“好。”然后走了。", ["他说：“好。”", "然后走了。"]),
        ("line one\nline two\n\n", ["line one", "line two"]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_chunks_respect_size_overlap_and_sentence_ends() -> None:
    text = "".join(f"第{i}句话。" for i in range(40))
    chunker = Chunker(len, max_tokens=30, overlap_tokens=10)
    chunks = chunker.chunk([Section(text, page=7, heading="H")])
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.tokens <= 30 and chunk.text.endswith("。") and chunk.page == 7
    for first, second in itertools.pairwise(chunks):
        assert second.text.split("。")[0] in first.text  # the next chunk starts with overlap
    covered = "".join(c.text for c in chunks)
    assert all(f"第{i}句话。" in covered for i in range(40))


SOURCES = [
    "根据第四次全国大熊猫调查，野生大熊猫约有1864只。",
    "The Zephyr-9 pump must be descaled every 90 days.",
]


@pytest.mark.parametrize(
    ("sentence", "supported"),
    [
        ("野生大熊猫约有1864只。", True),
        ("野生大熊猫约有2000只。", False),  # a number no source has
        ("The pump must be descaled every 90 days.", True),
        ("The pump must be descaled every 30 days.", False),
        ("大熊猫最喜欢吃苹果和香蕉。", False),
        ("Paris is the capital of France.", False),
    ],
)
def test_support_check(sentence: str, supported: bool) -> None:
    assert judge(sentence, [], SOURCES, [0.9, 0.9]).supported is supported


def test_citation_markers() -> None:
    assert cited_numbers("答案是1864只[1]【2】 and [1, 3].") == [1, 2, 1, 3]
    assert strip_citations("答案是1864只[1]。") == "答案是1864只。"


ATTRS = {"lang": "zh", "year": 2022, "draft": False}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "eq", "key": "lang", "value": "zh"}, True),
        ({"type": "ne", "key": "lang", "value": "zh"}, False),
        ({"type": "gt", "key": "year", "value": 2021}, True),
        ({"type": "lte", "key": "year", "value": 2021}, False),
        ({"type": "in", "key": "lang", "value": ["en", "zh"]}, True),
        ({"type": "nin", "key": "lang", "value": ["zh"]}, False),
        ({"type": "eq", "key": "missing", "value": 1}, False),
        ({"type": "gt", "key": "lang", "value": 1}, False),  # incomparable types never match
        ({"type": "eq", "key": "draft", "value": False}, True),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "lang", "value": "zh"},
                    {"type": "or", "filters": [{"type": "lt", "key": "year", "value": 2000}]},
                ],
            },
            False,
        ),
    ],
)
def test_filters(spec: dict[str, Any], expected: bool) -> None:
    assert matches(spec, ATTRS) is expected


# Question coverage: the evidence behind an answer must carry the question's numbers and
# (IDF-weighted) terms. Uniform weights here; the service weighs by the store's IDF.
@pytest.mark.parametrize(
    ("question", "evidence", "covered"),
    [
        ("2023年龙舟赛冠军是哪支队伍？", "2023年龙舟赛由青石村队夺得冠军。", True),
        ("2023年龙舟赛冠军是哪支队伍？", "2022年龙舟赛由白沙村队夺得冠军。", False),  # year
        ("第五届茶博会在哪里举办？", "第五届茶博会在西湖会展中心举办。", True),
        ("第五届茶博会在哪里举办？", "第5届茶博会在西湖会展中心举办。", True),  # 五 = 5
        ("第五届茶博会在哪里举办？", "第四届茶博会在西湖会展中心举办。", False),
        ("大熊猫每天吃多少竹子？", "小熊猫每天吃两公斤苹果。", False),  # other entity
        ("Who won the 2023 Harbor Regatta?", "The 2023 Harbor Regatta was won by Kestrel.", True),
        ("Who won the 2023 Harbor Regatta?", "The 2022 Harbor Regatta was won by Osprey.", False),
        (
            "How often must the Zephyr-9 pump be descaled?",
            "Zephyr-9 pumps must be descaled often.",
            True,
        ),
        (
            "How often must the Zephyr-9 pump be descaled?",
            "Clean the Boreas filter monthly.",
            False,
        ),
    ],
)
def test_question_coverage(question: str, evidence: str, covered: bool) -> None:
    assert cover(question, evidence, lambda term: 1.0).satisfies(0.6) is covered


def test_a_sentence_about_another_year_does_not_cover_the_question() -> None:
    """The passage mentions the asked year, but the sentence stating the answer is about
    another one."""
    evidence = Evidence(
        "2022年龙舟赛由白沙村队夺得冠军。",
        "2023年龙舟赛推迟举行。2022年龙舟赛由白沙村队夺得冠军。",
    )
    coverage = cover("2023年龙舟赛冠军是哪支队伍？", evidence, lambda term: 1.0)
    assert coverage.missing_numbers == () and coverage.other_years == ("2022",)
    assert not coverage.satisfies(0.6)


@pytest.mark.parametrize(
    ("question", "sentence", "in_kind"),
    [
        ("龙舟赛什么时候举行？", "龙舟赛将于6月3日举行。", True),
        ("龙舟赛什么时候举行？", "龙舟赛将正式举行。", False),
        ("白沙村队夺冠几次？", "白沙村队夺冠三次。", True),
        ("When is the Harbor Regatta held?", "The Harbor Regatta is held soon.", False),
        ("How many crews entered the regatta?", "12 crews entered.", True),
        ("Who won the Harbor Regatta?", "Kestrel won the Harbor Regatta.", True),
    ],
)
def test_when_and_how_many_need_a_number(question: str, sentence: str, in_kind: bool) -> None:
    assert answers_in_kind(sentence, question) is in_kind


@pytest.mark.parametrize(
    ("anchor", "other_years"),
    [
        ("2022年龙舟赛由白沙村队夺得冠军。", ("2022",)),
        ("2022赛季的冠军是白沙村队。", ("2022",)),
        ("The 2022 race was won by Osprey.", ("2022",)),
        ("白沙村队共有1864名支持者。", ()),  # a count, not a year
        ("2023年白沙村队再次夺冠。", ()),
    ],
)
def test_years_of_the_sentence_stating_the_answer(anchor: str, other_years: tuple[str]) -> None:
    coverage = cover("2023年龙舟赛冠军是哪支队伍？", Evidence(anchor, anchor), lambda t: 1.0)
    assert coverage.other_years == other_years


def test_rare_terms_weigh_more() -> None:
    rare = {"kestrel": 5.0}
    coverage = cover(
        "Did Kestrel finish the harbor race?", "Kestrel finished.", lambda t: rare.get(t, 0.5)
    )
    assert coverage.missing_terms == ("harbor", "race") and coverage.satisfies(0.6)
    assert idf_weights(10, {"common": 10})("common") < idf_weights(10, {"rare": 1})("rare")


@pytest.mark.parametrize(
    ("sentence", "adds"),
    [
        ("2023年龙舟赛冠军是青石村队。", True),
        ("2023年龙舟赛冠军是哪支队伍。", False),
        ("The 2023 Harbor Regatta was won by Kestrel.", True),
        ("Who won the 2023 Harbor Regatta.", False),
    ],
)
def test_answer_must_add_to_the_question(sentence: str, adds: bool) -> None:
    question = (
        "2023年龙舟赛冠军是哪支队伍？" if "龙舟" in sentence else "Who won the 2023 Harbor Regatta?"
    )
    assert bool(new_content(sentence, question)) is adds


def test_evidence_is_the_passage_stating_the_answer() -> None:
    source = "第五届茶博会于2021年开幕。展会持续三天。第六届茶博会在西湖会展中心举办。门票免费。"
    (passage,) = evidence_passages(
        "在西湖会展中心举办。", "第五届茶博会在哪里举办？", source, None, 0
    )
    assert passage.anchor == passage.passage == "第六届茶博会在西湖会展中心举办。"
    assert not cover("第五届茶博会在哪里举办？", passage, lambda t: 1.0).satisfies(0.6)
