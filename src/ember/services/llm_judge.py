"""The chat model as a yes/no judge: of a passage against a question (the LLM reranker), and of
an answer against the source it cites (the grounded answer's self-check).

No cross-encoder or NLI model ships on PyPI here, so the one model that can read a question and
a passage together is the chat model. Each judgement is one forward pass over a short prompt and
one generated token: the score is P(yes) / (P(yes) + P(no)) read from that token's
log-probabilities, so it is graded, not a coin, and a caller picks its own threshold.

Each judgement costs one prompt evaluation (hundreds of milliseconds to seconds on a CPU), which
is why both uses are off by default (``ground_self_check``; the reranker runs from
``bench/rag.py``), which measures what they buy. The prompts and the reading of the reply are
``ember.ground.judge_prompts``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ember.core.request_context import ANONYMOUS, Caller
from ember.core.types import ChatMessage, SamplingParams
from ember.ground.judge_prompts import relevance_prompt, yes_probability
from ember.ground.retrieval import Hit
from ember.services.generation_types import ChatRequest, ContentDelta
from ember.services.text_generation import TextGenerationService


async def yes_score(
    text: TextGenerationService,
    model: str,
    messages: list[ChatMessage],
    *,
    endpoint: str,
    caller: Caller = ANONYMOUS,
) -> float:
    """The model's P(yes) for a yes/no prompt: one token generated, its top 20 alternatives
    read (any model the router serves, a remote one included; one that returns no
    log-probabilities is scored by its reply, yes or no)."""
    request = ChatRequest(
        model=model,
        messages=messages,
        params=SamplingParams(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20),
    )
    prepared = await text.prepare_chat(request, endpoint=endpoint, caller=caller)
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
