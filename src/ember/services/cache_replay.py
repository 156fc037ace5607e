"""The response cache as a stage and as a source: keep a cacheable answer, replay a hit.

The planner looks the request up (``Planner._lookup``) and, on a miss, marks where the
answer should be kept (``ctx.cache.store``); :class:`CacheStage` keeps it once the request
finished well. A hit is played back by :class:`CacheReplay` as if it were generated.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

from ember.core.request_context import OutputFilter, RequestContext
from ember.core.types import FinishReason, GenerationChunk, SamplingParams
from ember.route.cache import CachedAnswer, ResponseCache


class CacheStage:
    """Stores a finished, cacheable answer (the planner marked it) in the cache."""

    name = "cache"

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    async def on_request(self, ctx: RequestContext) -> None:
        return None

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        return None

    async def on_complete(self, ctx: RequestContext) -> None:
        marked = ctx.cache.store
        if not marked or ctx.status != "ok" or ctx.cache.hit:
            return
        key, scope, vector = marked
        self.cache.put(
            key,
            scope,
            CachedAnswer(
                text=ctx.output_text,
                prompt_tokens=ctx.usage.prompt_tokens,
                completion_tokens=ctx.usage.completion_tokens,
                stored_at=self.cache._now(),
                vector=vector,
                finish_reason=cast(FinishReason, ctx.finish_reason or "stop"),
            ),
        )


@dataclass
class CacheReplay:
    """A cached answer played back as a generation (in word-sized chunks when streamed)."""

    answer: CachedAnswer
    ctx: RequestContext

    async def chunks(self, index: int, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        self.ctx.first_token_at = time.perf_counter()
        text = self.answer.text
        pieces = [text[i : i + 16] for i in range(0, len(text), 16)] or [""]
        for piece in pieces[:-1]:
            yield GenerationChunk(text=piece)
        yield GenerationChunk(
            text=pieces[-1],
            tokens=self.answer.completion_tokens,
            finish_reason=self.answer.finish_reason,
        )
