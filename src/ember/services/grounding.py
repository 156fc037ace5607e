"""Grounded answers: retrieve, screen, prompt with numbered sources, generate, check, cite.

1. Retrieve from the vector stores (hybrid search).
2. Screen every retrieved chunk with the guard's injection scanner (``source="document"``):
   sentences that carry instructions are cut out before anything reaches the prompt.
3. Below ``ground_min_score`` (the best hit's cosine similarity; 0.08 less for a question in
   another language than that hit) abstain without generating.
4. ``generative`` mode: the model answers from numbered sources, in the asker's language,
   and cites them as ``[n]``; ``extractive`` mode: the answer is the sources' own
   best-matching sentences, quoted.
5. A question asserting a number that no source states (``ember.ground.premise``) is
   answered with the source sentence that corrects it, quoted and cited.
6. Check each answer sentence against the sources it cites (``ember.ground.support``; a
   source in another language by sentence similarity, ``ember.ground.similarity``);
   unsupported sentences are removed; if the model declined, or less than
   ``ground_min_groundedness`` of the answer survives, the whole answer abstains with the
   fixed message in the question's language.
7. Check that the answer answers *this* question (``ember.ground.coverage``): the source
   passage stating what the answer adds must hold the question's numbers and codes, state
   the answer's number in the asked relation, and hold at least
   ``ground_min_question_coverage`` of its IDF-weighted terms or be close to it in the
   embedding (a paraphrase; across languages, the embedding alone) (``question_not_covered``),
   and the answer must add something to the question (``answer_restates_question``). A small
   model copies true sentences from topically close sources; this is what refuses them.
   Extractive quotes are held to the same check.
8. With ``ground_self_check`` on, a judge model (``ground_judge_model``, by default the one
   that answered) reads the answer against its first cited source and says yes or no; below
   ``ground_self_check_threshold`` of P(yes) the answer abstains (``self_check_failed``). Off by
   default: with the default 0.5B model as judge it trades answers for rejections at about
   the rate a stricter coverage setting does (``bench/rag.py`` prints both).

Steps 1-4 make a ``Draft``; steps 5-8 settle it under a ``CheckPolicy``, so one generation can
be settled under several policies (the bench's operating points).

The result carries what the ``ember`` response object reports: ``abstained``,
``groundedness`` (share of answer sentences supported), ``citations`` (file id, filename,
page, quoted text) and the per-sentence verdicts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ember.core.request_context import ANONYMOUS, Caller
from ember.core.types import ChatMessage, SamplingParams
from ember.ground.answer import (
    ABSTAIN,
    CheckPolicy,
    Citation,
    Draft,
    GroundedAnswer,
    Mode,
    language_of,
)
from ember.ground.chunking import split_sentences
from ember.ground.coverage import (
    Coverage,
    Evidence,
    answers_in_kind,
    best_cover,
    evidence_passages,
    idf_weights,
    new_content,
    question_terms,
)
from ember.ground.judge_prompts import answer_check_prompt
from ember.ground.premise import LEAD, contradicted, correction
from ember.ground.retrieval import Hit
from ember.ground.similarity import Similarity
from ember.ground.support import (
    SentenceSupport,
    best_quote,
    cited_numbers,
    judge,
    lexical_support,
    script,
    strip_citations,
    units,
)
from ember.guard.injection.registry import InjectionScanner
from ember.services.generation_types import ChatRequest, ContentDelta
from ember.services.llm_judge import yes_score
from ember.services.text_generation import TextGenerationService
from ember.services.vector_stores import VectorStoreService

CROSS_LINGUAL_SCORE_MARGIN = 0.08
# What a model writes when it declines, beyond the exact message it was told to use.
_DECLINE = re.compile(
    r"无法回答|无法确定|没有(提及|提到|相关|足够)|未(提及|提到)|不知道|can(no|')t answer|"
    r"cannot (be )?(answer|determine)|do(es)? not (contain|mention|provide)|"
    r"not (mentioned|provided)",
    re.IGNORECASE,
)


def _prompt(question: str, sources: Sequence[Hit], language: str) -> list[ChatMessage]:
    """Numbered sources and the question in one user turn (small models follow it best)."""
    blocks = []
    for number, hit in enumerate(sources, start=1):
        where = hit.filename + (f", p. {hit.page}" if hit.page else "")
        blocks.append(f"[{number}] ({where}) {hit.text}")
    if language == "zh":
        system = "你是一个严谨的问答助手，只根据给定的资料回答，不使用资料以外的知识。"
        user = (
            "资料：\n" + "\n".join(blocks) + f"\n\n问题：{question}\n"
            "请根据资料，用一句完整的话回答问题。"
        )
    else:
        system = "You are a careful assistant. You answer only from the given sources."
        user = (
            "Sources:\n" + "\n".join(blocks) + f"\n\nQuestion: {question}\n"
            "Answer the question in one English sentence from the sources (the sources may be "
            "in another language: translate what they say, keep names and numbers exact); "
            "you may cite a source number in brackets. If the sources do not contain the "
            f"answer, reply only: {ABSTAIN['en']}"
        )
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]


class GroundingService:
    def __init__(
        self,
        vector_stores: VectorStoreService,
        text: TextGenerationService,
        injection: InjectionScanner,
        *,
        min_score: float,
        max_sources: int,
        policy: CheckPolicy,
    ) -> None:
        self.vector_stores = vector_stores
        self.text = text
        self.injection = injection
        self.min_score = min_score
        self.max_sources = max_sources
        self.policy = policy

    # -- retrieval and screening ----------------------------------------------------------

    def screen(self, hits: Sequence[Hit]) -> tuple[list[Hit], list[dict[str, Any]]]:
        """Hits with injected instructions cut out, and what was cut."""
        kept: list[Hit] = []
        screened: list[dict[str, Any]] = []
        for hit in hits:
            if not self.injection.scan(hit.text, source="document").flagged:
                kept.append(hit)
                continue
            clean = []
            for sentence in split_sentences(hit.text):
                verdict = self.injection.scan(sentence, source="document")
                if verdict.flagged:
                    screened.append(
                        {"file_id": hit.file_id, "text": sentence, "score": verdict.score}
                    )
                else:
                    clean.append(sentence)
            if clean:
                hit.text = " ".join(clean)
                kept.append(hit)
        return kept, screened

    # -- answering ------------------------------------------------------------------------

    async def answer(
        self,
        question: str,
        store_ids: Sequence[str],
        *,
        model: str,
        mode: Mode = "generative",
        max_results: int | None = None,
        filters: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        hits: Sequence[Hit] | None = None,
        self_check: bool | None = None,
        caller: Caller = ANONYMOUS,
    ) -> GroundedAnswer:
        """A checked, cited answer to ``question`` (``hits`` skips retrieval: the bench;
        ``self_check`` overrides the ``ground_self_check`` setting)."""
        draft = await self.draft(
            question,
            store_ids,
            model=model,
            mode=mode,
            max_results=max_results,
            filters=filters,
            max_tokens=max_tokens,
            hits=hits,
            caller=caller,
        )
        policy = self.policy
        if self_check is not None:
            policy = replace(policy, self_check=self_check)
        return await self.settle(draft, policy)

    async def draft(
        self,
        question: str,
        store_ids: Sequence[str],
        *,
        model: str,
        mode: Mode = "generative",
        max_results: int | None = None,
        filters: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        hits: Sequence[Hit] | None = None,
        caller: Caller = ANONYMOUS,
    ) -> Draft:
        """Retrieve, screen, and (``generative`` mode, retrieval confident enough) generate."""
        language = language_of(question)
        if hits is None:
            hits = await self.vector_stores.retrieve(
                store_ids,
                question,
                k=max_results or self.max_sources,
                filters=filters,
                caller=caller,
            )
        sources, screened = await asyncio.to_thread(self.screen, hits)
        draft = Draft(question, list(store_ids), language, mode, sources, screened, model)
        draft.caller = caller
        # A question in another language than its best source scores lower for the same
        # relevance (multilingual-e5: 0.73-0.83 where the same question in the source's
        # language scores 0.85-0.92 on the seeds); the checks after generation decide.
        floor = self.min_score
        if sources and script(question) != script(sources[0].text):
            floor -= CROSS_LINGUAL_SCORE_MARGIN
        if not sources or sources[0].score < floor:
            draft.reason = "retrieval_confidence_below_threshold"
        elif mode == "generative":
            await self._generate(draft, max_tokens)
        return draft

    async def settle(self, draft: Draft, policy: CheckPolicy | None = None) -> GroundedAnswer:
        """The checked answer a draft earns under ``policy`` (the service's by default): a
        draft can be settled under several policies without generating again."""
        policy = policy or self.policy
        if draft.reason is not None:
            return self._abstain(draft, draft.reason)
        if draft.mode == "extractive":
            return await asyncio.to_thread(self._extract, draft, policy)
        answer = await self._check(draft, policy)
        answer.prompt_tokens, answer.completion_tokens = (
            draft.prompt_tokens,
            draft.completion_tokens,
        )
        answer.request_id = draft.request_id
        if policy.self_check and not answer.abstained:
            score = await self._self_check(draft, answer, policy)
            answer.self_check_score = score
            answer.self_check = "yes" if score >= policy.self_check_threshold else "no"
            if answer.self_check == "no":
                checked = self._abstain(draft, "self_check_failed")
                checked.sentences, checked.removed = answer.sentences, answer.removed
                checked.coverage = answer.coverage
                checked.self_check, checked.self_check_score = "no", score
                return checked
        return answer

    async def _self_check(self, draft: Draft, answer: GroundedAnswer, policy: CheckPolicy) -> float:
        """The judge's P(yes) that the answer, read against the first source it cites,
        answers the question correctly (``ember.services.llm_judge``)."""
        cited = answer.citations[0].number if answer.citations else 1
        messages = answer_check_prompt(
            draft.question, draft.sources[cited - 1].text, strip_citations(answer.text)
        )
        return await yes_score(
            self.text,
            policy.judge_model or draft.model,
            messages,
            endpoint="grounded",
            caller=draft.caller,
        )

    async def _generate(self, draft: Draft, max_tokens: int | None) -> None:
        """The model's draft, its token counts, the model id and the request id (the audit
        record of the generation, the AIGC label's ProduceID)."""
        request = ChatRequest(
            model=draft.model,
            messages=_prompt(draft.question, draft.sources, draft.language),
            params=SamplingParams(max_tokens=max_tokens or 256, temperature=0.0),
        )
        prepared = await self.text.prepare_chat(request, endpoint="grounded", caller=draft.caller)
        parts = [e.text async for e in self.text.run(prepared) if isinstance(e, ContentDelta)]
        usage = prepared.ctx.usage
        draft.text = "".join(parts)
        draft.prompt_tokens, draft.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        draft.model = prepared.spec.id
        draft.request_id = prepared.ctx.request_id

    async def _similarities(self, sentences: Sequence[str], sources: Sequence[Hit]) -> np.ndarray:
        """Cosine similarity of each sentence (as a query) to each source's stored vector."""
        if not sentences:
            return np.zeros((0, len(sources)))
        embedder = await self.vector_stores.embedder()
        vectors = await asyncio.to_thread(embedder.embed, list(sentences), "query")
        table = np.zeros((len(sentences), len(sources)), dtype=np.float32)
        ids = [hit.chunk_id for hit in sources]
        for row, vector in enumerate(vectors):
            distances = self.vector_stores.tables.chunks.distances(vector, ids)
            table[row] = [1.0 - distances.get(chunk_id, 1.0) for chunk_id in ids]
        return table

    async def _check(self, draft: Draft, policy: CheckPolicy) -> GroundedAnswer:
        """A contradicted premise corrected; else each sentence checked against its sources
        and the question's coverage checked."""
        sources = draft.sources
        texts = [hit.text for hit in sources]
        embedder = await self.vector_stores.embedder()
        similar = Similarity(embedder.embed)
        if contradicted(draft.question, texts):
            corrected = await asyncio.to_thread(self._correct_premise, draft, policy, similar)
            if corrected is not None:
                return corrected
        raw_sentences = [s for s in split_sentences(draft.text) if strip_citations(s)]
        if not raw_sentences or _DECLINE.search(draft.text):
            return self._abstain(draft, "model_declined")
        plain = [strip_citations(s) for s in raw_sentences]
        similarity = await self._similarities(plain, sources)
        # Sentence-level similarity where a claim and a source are in different languages.
        crossing = any(script(p) != script(t) for p in plain for t in texts)
        closest = (
            await asyncio.to_thread(similar.closest_sentence, plain, texts) if crossing else None
        )
        verdicts = [
            judge(
                text,
                cited_numbers(raw),
                texts,
                similarity[i].tolist(),
                None if closest is None else closest[i].tolist(),
            )
            for i, (raw, text) in enumerate(zip(raw_sentences, plain, strict=True))
        ]
        groundedness = sum(v.supported for v in verdicts) / len(verdicts)
        kept = [v for v in verdicts if v.supported]
        removed = [v.sentence for v in verdicts if not v.supported]
        if not kept or groundedness < policy.min_groundedness:
            answer = self._abstain(draft, "unsupported_answer")
            answer.sentences, answer.removed, answer.groundedness = verdicts, removed, groundedness
            return answer
        coverage: Coverage | None = None
        if policy.min_question_coverage > 0:
            reason, coverage = await asyncio.to_thread(
                self._covers_question, draft, kept, policy, similar
            )
            if reason is not None:
                answer = self._abstain(draft, reason)
                answer.sentences, answer.removed = verdicts, removed
                answer.groundedness, answer.coverage = groundedness, coverage
                return answer
        text, citations, offsets = self._compose(draft.language, kept, sources)
        return GroundedAnswer(
            text=text,
            abstained=False,
            groundedness=groundedness,
            citations=citations,
            sources=sources,
            sentences=verdicts,
            removed=removed,
            screened=draft.screened,
            mode="generative",
            model=draft.model,
            citation_offsets=offsets,
            coverage=coverage,
        )

    def _idf(self, draft: Draft) -> Callable[[str], float]:
        size, frequencies = self.vector_stores.retriever.document_frequencies(
            draft.store_ids, question_terms(draft.question)
        )
        return idf_weights(size, frequencies)

    def _correct_premise(
        self, draft: Draft, policy: CheckPolicy, similar: Similarity
    ) -> GroundedAnswer | None:
        """The question asserts a number no source states: the source sentence that covers
        the question while stating its own number, quoted with its citation
        (``ember.ground.premise``); None when no sentence does."""
        sources = draft.sources
        found = correction(
            draft.question,
            [(hit.text, hit.heading) for hit in sources],
            self._idf(draft),
            similar.pairs,
            policy.min_question_coverage,
        )
        if found is None:
            return None
        number, sentence, coverage = found
        hit = sources[number - 1]
        open_quote, close_quote = ("“", "”") if draft.language == "zh" else ('"', '"')
        text = f"{LEAD[draft.language]}{open_quote}{sentence}{close_quote}[{number}]"
        citation = Citation(number, hit.file_id, hit.filename, hit.page, sentence)
        return GroundedAnswer(
            text=text,
            abstained=False,
            groundedness=1.0,
            citations=[citation],
            sources=sources,
            sentences=[SentenceSupport(sentence, (number,), number, 1.0, 1.0, True)],
            screened=draft.screened,
            mode=draft.mode,
            prompt_tokens=draft.prompt_tokens,
            completion_tokens=draft.completion_tokens,
            model=draft.model,
            citation_offsets=[(len(text), citation)],
            request_id=draft.request_id,
            coverage=coverage,
            premise=contradicted(draft.question, [h.text for h in sources]),
        )

    def _covers_question(
        self,
        draft: Draft,
        kept: Sequence[SentenceSupport],
        policy: CheckPolicy,
        similar: Similarity | None = None,
    ) -> tuple[str | None, Coverage | None]:
        """Does some supported sentence add to the question (a number, if it asks when or
        how many), from a passage that states the question's numbers and codes, no other
        year, the asked relation, and enough of its terms or close enough to it in the
        embedding (``ember.ground.coverage``)? The reason to abstain (or None), and the best
        coverage found."""
        question, sources = draft.question, draft.sources
        adding = [v for v in kept if new_content(v.sentence, question)]
        if not adding:
            return "answer_restates_question", None
        adding = [v for v in adding if answers_in_kind(v.sentence, question)]
        if not adding:  # asked when or how many, told no number
            return "question_not_covered", None
        idf = self._idf(draft)
        passages: list[Evidence] = []
        answers: list[str] = []
        for verdict in adding:
            numbers = [n for n in verdict.cited if 1 <= n <= len(sources)]
            if verdict.best_source is not None and verdict.best_source not in numbers:
                numbers.append(verdict.best_source)
            for number in numbers:
                hit = sources[number - 1]
                found = evidence_passages(
                    verdict.sentence,
                    question,
                    hit.text,
                    hit.heading,
                    policy.coverage_window,
                    similar.closest_index if similar is not None else None,
                )
                passages += found
                answers += [verdict.sentence] * len(found)
        scores: dict[str, float] = {}
        if similar is not None and passages:
            anchors = list(dict.fromkeys(p.anchor for p in passages))
            scores = dict(zip(anchors, similar.pairs(question, anchors), strict=True))
        best = best_cover(
            question,
            passages,
            idf,
            similarity=scores.get if scores else None,  # type: ignore[arg-type]
            answers=answers,
            min_coverage=policy.min_question_coverage,
        )
        if best is None or not best.satisfies(policy.min_question_coverage):
            return "question_not_covered", best
        return None, best

    def _compose(
        self, language: str, kept: Sequence[SentenceSupport], sources: Sequence[Hit]
    ) -> tuple[str, list[Citation], list[tuple[int, Citation]]]:
        """The answer text with ``[n]`` markers, its citations, and where each one sits."""
        text = ""
        citations: dict[int, Citation] = {}
        offsets: list[tuple[int, Citation]] = []
        for verdict in kept:
            numbers = [n for n in verdict.cited if 1 <= n <= len(sources)]
            if not numbers and verdict.best_source is not None:
                numbers = [verdict.best_source]
            if text and (language == "en" or verdict.sentence[:1].isascii()):
                text += " "
            text += verdict.sentence
            for number in dict.fromkeys(numbers):
                hit = sources[number - 1]
                citation = citations.get(number) or Citation(
                    number,
                    hit.file_id,
                    hit.filename,
                    hit.page,
                    best_quote(verdict.sentence, hit.text),
                )
                citations[number] = citation
                text += f"[{number}]"
                offsets.append((len(text), citation))
        return text, list(citations.values()), offsets

    def _extract(self, draft: Draft, policy: CheckPolicy) -> GroundedAnswer:
        """Answer only by quoting: the source sentences that share the most with the question,
        held to the same question-coverage check as a generated answer (a quote about another
        year, or one that only restates the question, abstains)."""
        question, language, sources = draft.question, draft.language, draft.sources
        wanted = units(question)
        scored: list[tuple[float, int, str]] = []
        for number, hit in enumerate(sources, start=1):
            for sentence in split_sentences(hit.text):
                overlap = len(units(sentence) & wanted) / max(1, len(wanted))
                if overlap > 0:
                    scored.append((overlap + hit.score, number, sentence))
        scored.sort(key=lambda item: -item[0])
        chosen = scored[:2]
        if not chosen or chosen[0][0] - sources[chosen[0][1] - 1].score < 0.2:
            return self._abstain(draft, "no_matching_quote")
        verdicts = [
            SentenceSupport(
                sentence,
                (number,),
                number,
                lexical_support(sentence, sources[number - 1].text),
                1.0,
                True,
            )
            for _, number, sentence in chosen
        ]
        coverage: Coverage | None = None
        if policy.min_question_coverage > 0:
            reason, coverage = self._covers_question(draft, verdicts, policy)
            if reason is not None:
                answer = self._abstain(draft, reason)
                answer.sentences, answer.coverage = verdicts, coverage
                return answer
        open_quote, close_quote = ("“", "”") if language == "zh" else ('"', '"')
        text = ""
        citations: dict[int, Citation] = {}
        offsets: list[tuple[int, Citation]] = []
        for _, number, sentence in chosen:
            hit = sources[number - 1]
            text += (" " if text else "") + f"{open_quote}{sentence}{close_quote}[{number}]"
            citation = citations.setdefault(
                number, Citation(number, hit.file_id, hit.filename, hit.page, sentence)
            )
            offsets.append((len(text), citation))
        return GroundedAnswer(
            text=text,
            abstained=False,
            groundedness=1.0,
            citations=list(citations.values()),
            sources=sources,
            sentences=verdicts,
            screened=draft.screened,
            mode="extractive",
            model=draft.model,
            citation_offsets=offsets,
            coverage=coverage,
        )

    def _abstain(self, draft: Draft, reason: str) -> GroundedAnswer:
        # An abstention claims nothing, so nothing in it is unsupported.
        return GroundedAnswer(
            text=ABSTAIN[draft.language],
            abstained=True,
            groundedness=1.0,
            citations=[],
            sources=draft.sources,
            screened=draft.screened,
            reason=reason,
            mode=draft.mode,
            model=draft.model,
            prompt_tokens=draft.prompt_tokens,
            completion_tokens=draft.completion_tokens,
            request_id=draft.request_id,
        )
