"""The judge's prompts and the reading of its reply: a yes/no question about a passage and a
question (the LLM reranker's), or about an answer and the source it cites (the grounded
answer's self-check), and P(yes) from the first token's log-probabilities.

Pure text and arithmetic; ``ember.services.llm_judge`` asks a model with them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ember.core.types import ChatMessage

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
