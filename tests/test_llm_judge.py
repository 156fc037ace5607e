"""The chat model as a yes/no judge: its score, its prompts, and a real model reranking real
passages."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from ember.ground.judge_prompts import answer_check_prompt, relevance_prompt, yes_probability
from ember.ground.retrieval import Hit
from ember.services.container import Services
from ember.services.llm_judge import LLMReranker
from ember.settings import Settings
from tests.conftest import SMALL_MODEL


@pytest.mark.parametrize(
    ("alternatives", "expected"),
    [
        ([("Yes", math.log(0.6)), ("No", math.log(0.2))], 0.75),
        ([(" no", math.log(0.5)), ("yes", math.log(0.5))], 0.5),
        ([("是", math.log(0.09)), ("否", math.log(0.01)), ("The", math.log(0.9))], 0.9),
        ([("Sure", math.log(0.7)), ("I", math.log(0.3))], 0.5),  # neither: no evidence
        ([('"yes', math.log(0.3)), ("No", math.log(0.1)), ("NO", math.log(0.1))], 0.6),
    ],
)
def test_yes_probability(alternatives: list[tuple[str, float]], expected: float) -> None:
    assert yes_probability(alternatives) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("alternatives", "reply", "expected"),
    [
        ([], "No.", 0.0),  # no log-probabilities: the reply decides
        ([], "yes", 1.0),
        ([], "是", 1.0),
        ([], "Maybe", 0.5),
        ([("alt0", -1.0)], "no", 0.0),  # alternatives without yes or no: the reply decides
        ([("No", math.log(0.2)), ("Yes", math.log(0.6))], "No", 0.75),  # logprobs win
    ],
)
def test_yes_probability_falls_back_to_the_reply(
    alternatives: list[tuple[str, float]], reply: str, expected: float
) -> None:
    assert yes_probability(alternatives, reply) == pytest.approx(expected)


def test_judge_prompts_follow_the_question_language() -> None:
    zh = relevance_prompt("长城有多长？", "长城全长两万多公里。")[0].content or ""
    en = relevance_prompt("How long is the wall?", "x" * 5000)[0].content or ""
    assert "只回答" in zh and "yes or no" not in zh
    assert "Reply yes or no" in en and len(en) < 1400  # the passage is cut
    check = answer_check_prompt("长城有多长？", "长城全长两万多公里。", "两万多公里")
    assert "回答：两万多公里" in (check[0].content or "")
    check = answer_check_prompt("How long?", "y" * 5000, "very")
    assert "Answer: very" in (check[0].content or "") and len(check[0].content or "") < 1500


def _hit(chunk_id: int, text: str) -> Hit:
    return Hit(
        chunk_id=chunk_id,
        vector_store_id="vs",
        file_id=f"file-{chunk_id}",
        filename=f"{chunk_id}.txt",
        text=text,
        page=None,
        heading=None,
        attributes={},
        score=0.5,
    )


def test_a_real_model_judges_and_reorders_only_the_top(tmp_path: Path) -> None:
    services = Services.build(Settings(home=tmp_path, preload=[], n_threads=2))
    try:
        reranker = LLMReranker(services.text, SMALL_MODEL, top_n=3)
        hits = [
            _hit(1, "The museum opens at nine and closes at five."),
            _hit(2, "Paris is the capital of France."),
            _hit(3, "Bananas are rich in potassium."),
            _hit(4, "The Loire is the longest river in France."),
        ]

        async def run() -> tuple[float, list[Hit]]:
            score = await reranker.relevance("What is the capital of France?", hits[1].text)
            return score, await reranker.rerank("What is the capital of France?", hits)

        score, ordered = asyncio.run(run())
        assert 0.0 <= score <= 1.0
        assert sorted(h.chunk_id for h in ordered[:3]) == [1, 2, 3]  # a permutation of the top
        assert ordered[3].chunk_id == 4  # beyond top_n: untouched
    finally:
        asyncio.run(services.close())
