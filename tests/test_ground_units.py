"""Sentence splitting, the support and coverage checks, numbers as values, false premises
and attribute filters: tables of cases."""

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
    question_terms,
)
from ember.ground.filters import matches
from ember.ground.parsers import Section, parse
from ember.ground.premise import asserted_numbers, candidate_sentences, contradicted
from ember.ground.quantities import chinese_numeral, codes, missing_codes, unmatched_numbers
from ember.ground.support import cited_numbers, judge, script, strip_citations


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


# Real documents: questions read as questions, numbers as values, claims across languages.
SEED_SENTENCE = (
    "OpenAI的ChatGPT月活跃用户接近6亿,年预估收入约37亿美元;国内字节跳动的豆包应用月活跃用户"
    "达到7116万,百度的文小言和Moonshot的Kimi紧随其后。"
)


@pytest.mark.parametrize(
    ("question", "not_required"),
    [
        ("熟练使用Vibe编程的开发者可以让AI生成多大比例的代码？", {"多大", "比例", "可以"}),
        ("小型语言模型的上下文窗口普遍有多大？", {"多大", "普遍"}),
        ("Transformer架构是哪一年提出的？", {"一年", "哪一年"}),
        ("为什么DeepSeek-R1的幻觉率只有3.9%？", {"只有", "3.9%", "为什么"}),
        ("What context window do small language models usually have?", {"usually", "what"}),
        ("What hallucination rate did DeepSeek-R1 show?", {"show", "did", "what"}),
    ],
)
def test_interrogatives_and_function_words_are_not_required(
    question: str, not_required: set[str]
) -> None:
    assert not not_required & set(question_terms(question))


@pytest.mark.parametrize(
    ("claim", "evidence", "unmatched"),
    [
        ("about 2 million yuan", "一台八卡的A100需要人民币二百万左右", []),
        ("nearly 600 million users and 3.7 billion dollars", SEED_SENTENCE, []),
        ("2K to 8K tokens", "上下文窗口普遍较小(2K-8K tokens)", []),
        ("8.4 tonnes of CO2", "单次GPT-3训练排放8.4吨CO₂", []),
        ("71.16 million users", SEED_SENTENCE, []),
        ("about 3 million yuan", "一台八卡的A100需要人民币二百万左右", ["3000000"]),
        ("60 million users", SEED_SENTENCE, ["60000000"]),
        ("100 m sprint", "100米短跑", []),  # a distance, not a scale
    ],
)
def test_numbers_are_compared_as_values(claim: str, evidence: str, unmatched: list[str]) -> None:
    assert unmatched_numbers(claim, evidence) == unmatched


def test_codes_must_be_written_as_the_evidence_writes_them() -> None:
    assert codes("Does GPT-4 beat DeepSeek-R1 on an H100?") == ["gpt-4", "deepseek-r1", "h100"]
    assert missing_codes("an eight-card H100", "一台八卡的A100需要二百万") == ["h100"]
    assert missing_codes("DeepSeek-R1 and GPT-4", "DeepSeek R1, GPT 4") == []
    assert codes("nearly 600 million") == []
    assert chinese_numeral("二百万") == 2_000_000 and chinese_numeral("一千二百") == 1200


@pytest.mark.parametrize(
    ("sentence", "closest", "supported"),
    [
        # English claims against a Chinese source: the sentence similarity decides...
        ("ChatGPT has nearly 600 million monthly active users.", 0.83, True),
        ("ChatGPT is popular with students.", 0.74, False),
        # ... and numbers and codes must still match, as values.
        ("ChatGPT has nearly 60 million monthly active users.", 0.83, False),
        ("Kimi has 71.16 million monthly active users.", 0.83, True),  # the relation: coverage
        ("An H100 has 600 million users.", 0.83, False),
    ],
)
def test_cross_lingual_support(sentence: str, closest: float, supported: bool) -> None:
    verdict = judge(sentence, [1], [SEED_SENTENCE], [0.7], [closest])
    assert verdict.cross_lingual and verdict.supported is supported


def test_language_of_a_text() -> None:
    assert script("What is the price of Ant Group's 蚁天鉴 safety solution?") == "en"
    assert script("DeepSeek-R1显示出14.3%的幻觉率") == "zh"


@pytest.mark.parametrize(
    ("question", "answer", "other"),
    [
        ("豆包应用的年收入是多少？", "豆包应用的年收入约37亿美元。", ("豆包", "应用")),
        ("Kimi的月活跃用户有多少？", "Kimi的月活跃用户达到7116万。", ("kimi",)),
        ("ChatGPT的年收入是多少？", "ChatGPT的年预估收入约37亿美元。", ()),
        ("豆包应用的月活跃用户有多少？", "豆包应用月活跃用户达到7116万。", ()),
    ],
)
def test_the_number_must_belong_to_the_asked_relation(
    question: str, answer: str, other: tuple[str, ...]
) -> None:
    coverage = cover(question, Evidence(SEED_SENTENCE, SEED_SENTENCE), lambda t: 1.0, answer=answer)
    assert coverage.other_relation == other
    assert coverage.satisfies(0.8) is (not other)


def test_paraphrase_and_other_language_coverage() -> None:
    passage = "小型语言模型的上下文窗口普遍较小(2K-8K tokens),难以处理长文档。"
    english = "What context window do small language models usually have?"
    assert cover(english, passage, lambda t: 1.0, similarity=0.83).satisfies(0.8)
    assert not cover(english, passage, lambda t: 1.0, similarity=0.7).satisfies(0.8)
    h100 = cover("How much does an eight-card H100 cost?", "八卡的A100需要二百万", lambda t: 1.0)
    assert h100.missing_names == ("h100",) and not h100.satisfies(0.8)

    # The same language: terms that fall short pass only when the anchor is very close, and
    # no missing term is one the store never uses (weight 2: no chunk holds it).
    def known(term: str) -> float:
        return 1.0 if term in ("slm", "长度") else 2.0 if term == "\uffff" else 1.0

    short = cover("SLM的上下文长度是多少？", passage, known, similarity=0.9)
    assert short.method == "paraphrase" and short.satisfies(0.8)
    assert not cover("SLM的上下文长度是多少？", passage, known).satisfies(0.8)
    unknown = cover("SLM的上下文长度是多少？", passage, lambda t: 1.0, similarity=0.9)
    assert unknown.absent == ("slm", "长度") and not unknown.satisfies(0.8)


@pytest.mark.parametrize(
    ("question", "asserted"),
    [
        ("为什么DeepSeek-R1的幻觉率只有3.9%？", ["3.9"]),
        ("Why was Phi-4 trained on only 5 synthetic datasets?", ["5"]),  # 4: a name's
        ("Why did the 2022 race start late?", []),  # a year names the edition
        ("为什么第七届茶博会推迟了？", []),
        ("DeepSeek-R1的幻觉率是多少？", []),  # asks, asserts nothing
    ],
)
def test_asserted_numbers(question: str, asserted: list[str]) -> None:
    assert asserted_numbers(question) == asserted


def test_a_contradicted_premise() -> None:
    source = "在Vectara HHEM人工智能幻觉测试中,DeepSeek-R1显示出14.3%的幻觉率。"
    assert contradicted("为什么DeepSeek-R1的幻觉率只有3.9%？", [source]) == ["3.9"]
    assert contradicted("为什么DeepSeek-R1的幻觉率是14.3%？", [source]) == []
    assert candidate_sentences(["没有数字。", source]) == [(2, source)]


CAPTURE = """社区所有版块导航
Python
python开源   Django   Python   DjangoApp
DATA
docker   Elasticsearch
Py学习  »  aigc

大模型:学术领域的巨人,工程领域的矮子

AINLPer • 2 周前 • 116 次点击
点击下方AINLPer,添加关注

工程领域的矮子

首先,大模型的训练和部署成本高昂,比如一台八卡的A100需要人民币二百万左右,这对于大多数企业而言是难以承受之重。

超级APP

OpenAI的ChatGPT月活跃用户接近6亿,年预估收入约37亿美元。

推荐阅读

[1]Transformer|前馈神经网络(FFN)
[2]Transformer|注意力机制Attention

Copyright © 2020-2025 蚁人论坛 (iYenn.com) All Rights Reserved.
关于我们 隐私政策 免责声明 联系我们
"""


def test_a_web_capture_loses_its_boilerplate_and_keeps_title_and_headings() -> None:
    sections = parse("capture.txt", CAPTURE.encode())
    assert [s.heading for s in sections] == [
        "大模型:学术领域的巨人,工程领域的矮子 › 工程领域的矮子",
        "大模型:学术领域的巨人,工程领域的矮子 › 超级APP",
    ]
    text = "\n".join(s.text for s in sections)
    assert "二百万" in text and "37亿美元" in text
    for boilerplate in (
        "Django",
        "Elasticsearch",
        "次点击",
        "添加关注",
        "[1]",
        "Copyright",
        "隐私",
    ):
        assert boilerplate not in text


@pytest.mark.parametrize(
    "text",
    [
        "一段普通的文字。没有结构。",
        "野生大熊猫约有1864只。\n圈养大熊猫的数量也在增加。",
        "2023-01-01 12:00 INFO started\n2023-01-01 12:01 INFO stopped",
    ],
)
def test_plain_text_without_structure_is_one_section(text: str) -> None:
    assert [(s.text, s.heading) for s in parse("plain.txt", text.encode())] == [(text, None)]
