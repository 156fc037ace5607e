"""Sentence splitting, the support check and attribute filters: tables of cases."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ember.ground.chunking import Chunker, split_sentences
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
