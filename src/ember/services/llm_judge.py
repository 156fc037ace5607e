"""The chat model as a yes/no judge: of a passage against a question (the LLM reranker), and of
an answer against the source it cites (the grounded answer's self-check).

No cross-encoder or NLI model ships on PyPI here, so the one model that can read a question and
a passage together is the chat model. Each judgement is one forward pass over a short prompt and
one generated token: the score is P(yes) / (P(yes) + P(no)) read from that token's
log-probabilities, so it is graded, not a coin, and a caller picks its own threshold.

Each judgement costs one prompt evaluation (hundreds of milliseconds to seconds on a CPU), which
is why both uses are off by default (``ground_self_check``; the reranker runs from
``bench/rag.py``), which measures what they buy.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence

from ember.core.types import ChatMessage, SamplingParams
from ember.ground.retrieval import Hit
from ember.services.text_generation import ChatRequest, ContentDelta, TextGenerationService

_HAN = re.compile(r"[\u4e00-\u9fff]")
YES = frozenset({"yes", "是", "是的"})
NO = frozenset({"no", "否", "不"})
#: Characters a judged passage is cut to (the prompt must stay short to stay cheap).
PASSAGE_CHARS = 1200


def relevance_prompt(question: str, passage: str) -> list[ChatMessage]:
    """Does ``passage`` contain the answer to ``question``? (the reranker's question)"""
    passage = passage[:PASSAGE_CHARS]
    if _HAN.search(question):
        user = (
            f"资料：{passage}\n\n问题：{question}\n\n"
            "这段资料是否包含这个问题的答案？只回答“是”或“否”。"
        )
    else:
        user = (
            f"Passage: {passage}\n\nQuestion: {question}\n\n"
            "Does the passage contain the answer to the question? Reply yes or no."
        )
    return [ChatMessage(role="user", content=user)]


def answer_check_prompt(question: str, passage: str, answer: str) -> list[ChatMessage]:
    """Does ``answer``, read against ``passage``, answer ``question`` correctly? (the
    self-check's question; of the phrasings measured on RGB it separated answerable from
    unanswerable questions best)"""
    passage = passage[:PASSAGE_CHARS]
    if _HAN.search(question):
        user = (
            f"资料：{passage}\n\n问题：{question}\n回答：{answer}\n\n"
            "根据资料，这个回答是否正确回答了问题？只回答“是”或“否”。"
        )
    else:
        user = (
            f"Passage: {passage}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
            "According to the passage, does this answer correctly answer the question? "
            "Reply yes or no."
        )
    return [ChatMessage(role="user", content=user)]


def _word(token: str) -> str:
    return token.strip().strip("\"'“”.,!。，！").lower()


def yes_probability(alternatives: Sequence[tuple[str, float]], reply: str = "") -> float:
    """P(yes) / (P(yes) + P(no)) over the first token's top alternatives. When neither word is
    among them (a provider that returns no log-probabilities, or too few), the reply itself
    decides: 1.0 for yes, 0.0 for no, 0.5 for anything else."""
    yes = no = 0.0
    for token, logprob in alternatives:
        word = _word(token)
        if word in YES:
            yes += math.exp(logprob)
        elif word in NO:
            no += math.exp(logprob)
    if yes + no > 0:
        return yes / (yes + no)
    first = _word(reply.split()[0]) if reply.split() else ""
    return 1.0 if first in YES else 0.0 if first in NO else 0.5


async def yes_score(
    text: TextGenerationService, model: str, messages: list[ChatMessage], *, endpoint: str
) -> float:
    """The model's P(yes) for a yes/no prompt: one token generated, its top 20 alternatives
    read (any model the router serves, a remote one included; one that returns no
    log-probabilities is scored by its reply, yes or no)."""
    request = ChatRequest(
        model=model,
        messages=messages,
        params=SamplingParams(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20),
    )
    prepared = await text.prepare_chat(request, endpoint=endpoint)
    alternatives: list[tuple[str, float]] = []
    reply: list[str] = []
    async for event in text.run(prepared):
        if isinstance(event, ContentDelta):
            reply.append(event.text)
            if event.logprobs and not alternatives:
                first = event.logprobs[0]
                alternatives = [(t.token, t.logprob) for t in first.top] or [
                    (first.token, first.logprob)
                ]
    return yes_probability(alternatives, "".join(reply))


class LLMReranker:
    """Reorders hits by the chat model's yes/no judgement of each (async: it generates).

    Hits beyond ``top_n`` keep their fused order after the judged ones; ties keep the fused
    order too."""

    def __init__(self, text: TextGenerationService, model: str, *, top_n: int = 10) -> None:
        self.text = text
        self.model = model
        self.top_n = top_n

    async def relevance(self, question: str, passage: str) -> float:
        return await yes_score(
            self.text, self.model, relevance_prompt(question, passage), endpoint="rerank"
        )

    async def rerank(self, question: str, hits: Sequence[Hit]) -> list[Hit]:
        judged = list(hits[: self.top_n])
        scores = await asyncio.gather(*(self.relevance(question, h.text) for h in judged))
        order = sorted(range(len(judged)), key=lambda i: (-scores[i], i))
        return [judged[i] for i in order] + list(hits[self.top_n :])
