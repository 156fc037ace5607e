"""Grounded answers over real multi-paragraph documents, through the real server and the
official client: questions whose interrogatives the passage cannot contain, near-misses that
must still abstain (in the asker's language), and a false premise corrected with its
citation. Cross-lingual answers (an English question over the Chinese article) do not yet
come through end to end with the default model (issue 21 stays open for them); the checks
that make them possible are tested without a model in tests/test_ground_units.py.

The Chinese article is condensed from a web capture of the kind users upload (the seeds); the
default model (Qwen2.5-Coder-0.5B, greedy) answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ember.ground.support import script
from tests.conftest import RunningServer, client_for, start_server, stop_server

CONFIG = 'preload = ["default"]\nn_threads = 2\ncontext_length = 4096\n'
ARTICLE = """大模型：学术领域的巨人，工程领域的矮子

摘要

在人工智能的浩瀚宇宙中，大模型以其卓越的知识理解和语言生成能力，在学术领域内掀起了新的热潮。然而，当这些理论上的巨人踏入工程实践，却常常展现出一种“矮子”姿态：幻觉问题、准确性问题、成本问题、实时性问题、数据隐私与安全性等等。

工程领域的矮子

首先，大模型的训练和部署成本高昂，需要强大的计算资源和存储空间，比如一台八卡的A100需要人民币二百万左右，这对于大多数企业和开发者而言是难以承受之重。

其次，大模型的幻觉问题限制了其在金融、医疗等敏感领域的应用。
在Vectara HHEM人工智能幻觉测试中，DeepSeek-R1显示出14.3%的幻觉率。

超级APP

在AI应用方面，经过一年多的市场验证，ChatBot和生活服务类AI应用已取得显著进展。OpenAI的ChatGPT月活跃用户接近6亿,年预估收入约37亿美元;国内字节跳动的豆包应用月活跃用户达到7116万,百度的文小言和Moonshot的Kimi紧随其后。

趋势

据Gartner的预测，到2026年超过80%的企业将部署生成式AI应用。熟练使用Vibe编程的开发者可以让AI生成95%以上的代码。
"""
MANUAL = """Zephyr-9 circulation pump: field notes

The Zephyr-9 is a circulation pump made by Boreal Works for district heating loops. It was
launched in 2019 and replaced the older Zephyr-7.

Operation

At full speed the Zephyr-9 draws 45 watts and moves 3.2 cubic metres of water per hour. Its
controller lowers the speed at night.

Maintenance

The Zephyr-9 must be descaled every 90 days in hard-water areas. The seals are replaced every
five years.
"""
EN = "I can't answer that from the provided documents."
ZH = "根据现有资料无法回答。"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ember-real-docs"), CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[openai.OpenAI]:
    with client_for(server) as client:
        yield client


@pytest.fixture(scope="module")
def store(client: openai.OpenAI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("real-docs")
    ids = {}
    for name, text in {"article.txt": ARTICLE, "zephyr.txt": MANUAL}.items():
        (folder / name).write_text(text)
        ids[name] = client.files.create(file=folder / name, purpose="assistants").id
    created = client.vector_stores.create(name="real", file_ids=list(ids.values()))
    deadline = time.monotonic() + 300
    while client.vector_stores.retrieve(created.id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    return {"id": created.id, "names": {v: k for k, v in ids.items()}}


def _ask(client: openai.OpenAI, store: dict[str, Any], question: str) -> Any:
    return client.responses.create(
        model="default",
        input=question,
        tools=[{"type": "file_search", "vector_store_ids": [store["id"]]}],
    )


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("据Gartner预测，到2026年将有多大比例的企业部署生成式AI应用？", "80%"),
        ("熟练使用Vibe编程的开发者可以让AI生成多大比例的代码？", "95%"),
    ],
)
def test_interrogatives_are_not_terms_the_passage_must_contain(
    client: openai.OpenAI, store: dict[str, Any], question: str, fact: str
) -> None:
    """多大, 比例 and 可以 ask; the passage states the value, not those words."""
    response = _ask(client, store, question)
    ember = response.model_extra["ember"]
    assert ember["abstained"] is False, ember
    assert fact in response.output_text
    coverage = ember["question_coverage"]
    assert not {"多大", "比例", "可以"} & set(coverage["missing_terms"])
    assert coverage["coverage"] >= 0.8


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("一台八卡的H100需要多少钱？", ZH),  # the article prices the A100
        ("How much does an eight-card H100 machine cost?", EN),
        ("How many monthly active users does Kimi have?", EN),  # Kimi only follows
    ],
)
def test_near_misses_abstain_in_the_askers_language(
    client: openai.OpenAI, store: dict[str, Any], question: str, message: str
) -> None:
    response = _ask(client, store, question)
    ember = response.model_extra["ember"]
    assert response.output_text == message, ember
    assert ember["abstained"] is True and ember["citations"] == []


@pytest.mark.parametrize(
    "question",
    [
        "为什么DeepSeek-R1在Vectara HHEM幻觉测试中的幻觉率只有3.9%？",
        "Why was DeepSeek-R1's hallucination rate only 3.9% in the Vectara HHEM test?",
    ],
)
def test_a_false_premise_is_corrected_with_its_citation(
    client: openai.OpenAI, store: dict[str, Any], question: str
) -> None:
    response = _ask(client, store, question)
    ember = response.model_extra["ember"]
    assert ember["abstained"] is False, ember
    assert ember["premise_contradicted"] == ["3.9"]
    assert "14.3%" in response.output_text and "3.9" not in response.output_text
    citation = ember["citations"][0]
    assert store["names"][citation["file_id"]] == "article.txt" and "14.3%" in citation["quote"]
    lead = "The documents say otherwise" if script(question) == "en" else "资料的说法"
    assert response.output_text.startswith(lead)
