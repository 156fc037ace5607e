"""Text generation: chat (with tools and structured output) and plain completion.

``prepare_chat`` / ``prepare_completion`` hand the request to the planner
(``ember.services.planner``), which does everything that can fail because of the request
*before* any byte is sent, so those failures are ordinary HTTP errors; ``run`` then yields
:class:`~ember.services.generation_types.ChatEvent` values that the API layer turns into
OpenAI chunks or a whole response, passing every choice through the pipeline's output
filters.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import cast

from ember.core.request_context import ANONYMOUS, Caller, OutputFilter
from ember.core.tool_calls import ToolCallParser
from ember.core.tool_repeats import answered_calls, is_repeat
from ember.core.types import FinishReason, GenerationChunk, SamplingParams, TokenLogprob, ToolCall
from ember.errors import EmberError
from ember.services.generation import EngineStream, generate_async
from ember.services.generation_types import (
    ChatEvent,
    ChatRequest,
    ChoiceEnd,
    ContentDelta,
    PreparedGeneration,
    ToolCallDelta,
)
from ember.services.local_prompt import answer_prompt
from ember.services.pipeline import Pipeline
from ember.services.planner import Planner


class TextGenerationService:
    """Plans requests (the planner) and streams their choices through the output filters."""

    def __init__(self, planner: Planner, pipeline: Pipeline) -> None:
        self.planner = planner
        self.pipeline = pipeline

    async def prepare_chat(
        self, request: ChatRequest, *, endpoint: str, caller: Caller = ANONYMOUS
    ) -> PreparedGeneration:
        return await self.planner.prepare_chat(request, endpoint=endpoint, caller=caller)

    async def prepare_completion(
        self,
        model: str,
        prompt: str,
        params: SamplingParams,
        *,
        n: int = 1,
        stream: bool = False,
        caller: Caller = ANONYMOUS,
    ) -> PreparedGeneration:
        return await self.planner.prepare_completion(
            model, prompt, params, n=n, stream=stream, caller=caller
        )

    async def admit(self, prepared: PreparedGeneration) -> None:
        """Hand the first choice to its engine now, before a stream's first byte: a batching
        engine's refusal (a full queue: 503 ``server_overloaded`` with ``Retry-After``) is
        then an HTTP error, not an error event after a 200. ``run`` continues the admitted
        generation. A refusal completes the pipeline (the audit and usage record it)."""
        engine = prepared.engine
        if prepared.remote is not None or engine is None or not engine.batching:
            return  # a remote target opened in prepare; other engines queue on their lock
        if prepared.admitted is not None:
            return
        stream = EngineStream(
            engine, prepared.prompt_tokens, prepared.params, constraint=prepared.constraint
        )
        try:
            await stream.start()
        except BaseException as exc:
            prepared.ctx.status = "refused" if isinstance(exc, EmberError) else "error"
            await self.pipeline.on_complete(prepared.ctx)
            raise
        prepared.admitted = stream

    async def run(self, prepared: PreparedGeneration) -> AsyncIterator[ChatEvent]:
        """Generate every choice in turn; completes the pipeline when done or abandoned."""
        ctx = prepared.ctx
        try:
            for index in range(prepared.n):
                params = prepared.params
                if params.seed is not None and index:
                    params = replace(params, seed=params.seed + index)
                filters = self.pipeline.output_filters(ctx)
                async for event in self._run_choice(prepared, index, params, filters):
                    yield event
        except BaseException:
            ctx.status = "error"
            raise
        finally:
            await self.pipeline.on_complete(ctx)

    async def _run_choice(
        self,
        prepared: PreparedGeneration,
        index: int,
        params: SamplingParams,
        filters: list[OutputFilter],
    ) -> AsyncIterator[ChatEvent]:
        ctx = prepared.ctx
        constraint = prepared.constraint
        tools = constraint.tools if constraint is not None else ()
        # The decision step: under "auto", a call the model already made this turn and got
        # the result of is dropped; when that leaves nothing, the model answers in text.
        answered = (
            answered_calls(ctx.messages)
            if constraint is not None
            and constraint.tool_mode == "auto"
            and prepared.engine is not None
            and prepared.remote is None
            else ()
        )
        positions = 0
        said = False
        # A guarding filter (one with ``blocked``) may hold text back and stop the answer; the
        # tokens' logprobs then wait with the text, so a stopped answer leaks none of them.
        guarded = any(hasattr(f, "blocked") for f in filters)
        held: tuple[TokenLogprob, ...] = ()
        prompt = prepared.prompt_tokens
        while True:
            parser = ToolCallParser(tools) if prepared.parses_tools else None
            repeats, retry = 0, False
            stream: AsyncIterator[GenerationChunk]
            if prepared.remote is not None:
                stream = prepared.remote.chunks(index, params)
            elif index == 0 and prepared.admitted is not None:
                stream, prepared.admitted = prepared.admitted.chunks(), None
            else:
                assert prepared.engine is not None
                stream = generate_async(prepared.engine, prompt, params, constraint=constraint)
            async with aclosing(cast(AsyncGenerator[GenerationChunk, None], stream)) as chunks:
                async for chunk in chunks:
                    if chunk.tokens and ctx.first_token_at is None:
                        ctx.first_token_at = time.perf_counter()
                    ctx.usage.completion_tokens += chunk.tokens
                    text = chunk.text
                    for output_filter in filters:
                        text = output_filter.feed(text)
                        if chunk.finish_reason is not None:
                            text += output_filter.flush()
                    blocked = any(getattr(f, "blocked", False) for f in filters)
                    logprobs = chunk.logprobs
                    if guarded:
                        held += chunk.logprobs
                        logprobs, held = (held, ()) if text and not blocked else ((), held)
                    ending = chunk.finish_reason is not None or blocked
                    calls: list[ToolCall] = []
                    if parser is not None:
                        text, calls = parser.feed(text)
                        if ending:
                            tail, more = parser.finish()
                            text, calls = text + tail, calls + more
                    if not blocked and chunk.tool_calls:  # a remote provider's: structured
                        calls += [_restored(call, ctx.guard.vault) for call in chunk.tool_calls]
                    if answered:
                        fresh = [call for call in calls if not is_repeat(call, answered)]
                        repeats, calls = repeats + len(calls) - len(fresh), fresh
                    ctx.output_text += text
                    said = said or bool(text.strip())
                    if text or logprobs:
                        yield ContentDelta(index, text, logprobs)
                    for call in calls:
                        ctx.output_text += call.arguments
                        yield ToolCallDelta(index, positions, call)
                        positions += 1
                    if not ending:
                        continue
                    if repeats and not positions and not said and not blocked:
                        retry = True  # only repeated calls: ask again for the answer, in text
                        break
                    reason: FinishReason = (
                        "content_filter" if blocked else chunk.finish_reason or "stop"
                    )
                    if positions and reason == "stop":
                        reason = "tool_calls"
                    ctx.finish_reason = reason  # a cached answer replays it
                    yield ChoiceEnd(index, reason)
                    return
            if not retry or constraint is None or prepared.engine is None:
                return
            # Asked again with no tools offered, and text that may not begin like a call.
            prompt = answer_prompt(prepared.engine, ctx)
            constraint, answered = replace(constraint, tool_mode="text"), ()


def _restored(call: ToolCall, vault: object) -> ToolCall:
    """A remote tool call's arguments with the guard's placeholders put back (the text path
    does this through the vault's stream restorer)."""
    restore = getattr(vault, "restore", None)
    return replace(call, arguments=restore(call.arguments)) if restore else call
