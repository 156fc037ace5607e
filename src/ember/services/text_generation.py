"""Text generation use cases: chat (with tools and structured output) and plain completion.

``prepare_chat`` / ``prepare_completion`` do everything that can fail because of the request
(unknown model, wrong kind of model, unsupported parameter, prompt too long) *before* any byte
is sent, so those failures are ordinary HTTP errors; ``run`` then yields
:class:`ChatEvent` values that the API layer turns into OpenAI chunks or a whole response.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, cast

from ember.core.types import (
    ChatMessage,
    FinishReason,
    GenerationChunk,
    OutputConstraint,
    SamplingParams,
    TokenLogprob,
    ToolCall,
    ToolSpec,
)
from ember.engines.base import TextEngine
from ember.engines.manager import ModelManager
from ember.errors import (
    ContextLengthExceededError,
    EmberError,
    InvalidRequestError,
    UnsupportedParameterError,
)
from ember.models.registry import ModelRegistry, ModelSpec
from ember.services.gateway import Gateway
from ember.services.generation import generate_async
from ember.services.pipeline import OutputFilter, Pipeline, RequestContext
from ember.services.tool_calls import ToolCallParser

ToolChoice = Literal["auto", "none", "required"] | str


@dataclass
class ChatRequest:
    """A chat request in domain terms (the wire model converts itself into this)."""

    model: str
    messages: list[ChatMessage]
    params: SamplingParams = field(default_factory=SamplingParams)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    response_format: OutputConstraint | None = None
    n: int = 1
    stream: bool = False


class ChunkSource(Protocol):
    """Generated text from somewhere other than a local engine (``ember.services.gateway``)."""

    def chunks(self, index: int, params: SamplingParams) -> AsyncIterator[GenerationChunk]: ...


@dataclass
class PreparedGeneration:
    """A request that passed every check: the model is loaded and the prompt fits."""

    spec: ModelSpec
    engine: TextEngine | None  # None when a remote target serves it (``remote``)
    ctx: RequestContext
    prompt_tokens: list[int]
    params: SamplingParams
    constraint: OutputConstraint | None = None
    parses_tools: bool = False
    n: int = 1
    created: int = field(default_factory=lambda: int(time.time()))
    remote: ChunkSource | None = None  # a remote target or a cached answer


@dataclass(frozen=True)
class ContentDelta:
    index: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ToolCallDelta:
    index: int
    position: int
    call: ToolCall


@dataclass(frozen=True)
class ChoiceEnd:
    index: int
    finish_reason: FinishReason


ChatEvent = ContentDelta | ToolCallDelta | ChoiceEnd


class TextGenerationService:
    """Composes the registry, the loaded engines and the request pipeline."""

    def __init__(
        self,
        registry: ModelRegistry,
        manager: ModelManager,
        pipeline: Pipeline,
        gateway: Gateway | None = None,
    ):
        self.registry = registry
        self.manager = manager
        self.pipeline = pipeline
        self.gateway = gateway

    async def _text_engine(self, model: str, *, purpose: str) -> tuple[ModelSpec, TextEngine]:
        spec = self.registry.resolve(model)
        if spec.kind == "embedding":
            raise InvalidRequestError(
                f"The model '{model}' is an embedding model; it cannot be used for {purpose}.",
                param="model",
                code="model_not_supported",
            )
        engine = await self.manager.get(spec)
        assert isinstance(engine, TextEngine)
        engine.check_capacity()  # 503 + Retry-After now, before a stream starts
        return spec, engine

    async def prepare_chat(
        self, request: ChatRequest, *, endpoint: str, ctx: RequestContext | None = None
    ) -> PreparedGeneration:
        """``ctx``: a request the router already passed through the pipeline."""
        if ctx is None and self.gateway is not None and self.gateway.handles(request.model):
            return await self.gateway.prepare_chat(self, request, endpoint=endpoint)
        routed = ctx
        spec, engine = await self._text_engine(request.model, purpose="chat")
        caps = engine.capabilities
        if request.params.logprobs and not caps.logprobs:
            raise UnsupportedParameterError(
                f"The model '{spec.id}' cannot return logprobs.", param="logprobs"
            )
        if ctx is None:
            ctx = RequestContext(
                endpoint=endpoint,
                model=spec.id,
                messages=list(request.messages),
                max_tokens=request.params.max_tokens,
            )
        async with self._refusal_recorded(ctx):
            if routed is None:
                await self.pipeline.on_request(ctx)
            constraint = request.response_format
            tools: Sequence[ToolSpec] = ()
            if request.tools and request.tool_choice != "none":
                if not caps.tools:
                    raise UnsupportedParameterError(
                        f"The model '{spec.id}' does not support tools.", param="tools"
                    )
                tools = _chosen_tools(request)
                constraint = OutputConstraint(
                    kind="tool_calls",
                    tools=tuple(tools),
                    tool_mode="auto" if request.tool_choice == "auto" else "required",
                    parallel=request.parallel_tool_calls,
                )
            # Structured output (JSON mode, tool calls) never gets the visible AIGC notice.
            ctx.attributes["structured_output"] = constraint is not None
            if constraint is not None and not caps.json_schema:
                raise UnsupportedParameterError(
                    f"The model '{spec.id}' cannot constrain its output.", param="response_format"
                )
            prompt = engine.chat_template.render(ctx.messages, tools=request.tools if tools else ())
            tokens = engine.tokenize(prompt)
            self._check_context(engine, tokens, request.params, param="messages")
            ctx.usage.prompt_tokens = len(tokens)
            return PreparedGeneration(
                spec=spec,
                engine=engine,
                ctx=ctx,
                prompt_tokens=tokens,
                params=request.params,
                constraint=constraint,
                parses_tools=bool(tools),
                n=request.n,
            )

    async def prepare_completion(
        self, model: str, prompt: str, params: SamplingParams, *, n: int = 1, stream: bool = False
    ) -> PreparedGeneration:
        if self.gateway is not None and self.gateway.router.handles(model):
            # A route: its targets speak chat completions, so the prompt is one user message.
            routed = ChatRequest(
                model=model,
                messages=[ChatMessage(role="user", content=prompt)],
                params=params,
                n=n,
                stream=stream,
            )
            return await self.gateway.prepare_chat(self, routed, endpoint="completions")
        spec, engine = await self._text_engine(model, purpose="completions")
        if params.logprobs and not engine.capabilities.logprobs:
            raise UnsupportedParameterError(
                f"The model '{spec.id}' cannot return logprobs.", param="logprobs"
            )
        ctx = RequestContext(
            endpoint="completions",
            model=spec.id,
            messages=[ChatMessage(role="user", content=prompt)],
        )
        async with self._refusal_recorded(ctx):
            await self.pipeline.on_request(ctx)
            tokens = engine.tokenize(ctx.messages[0].content or "")
            self._check_context(engine, tokens, params, param="prompt")
            ctx.usage.prompt_tokens = len(tokens)
            return PreparedGeneration(spec, engine, ctx, tokens, params, n=n)

    @asynccontextmanager
    async def _refusal_recorded(self, ctx: RequestContext) -> AsyncIterator[None]:
        """A request refused after the pipeline saw it still completes the pipeline, so the
        audit log and usage record the refusal."""
        try:
            yield
        except EmberError:
            ctx.status = "refused"
            await self.pipeline.on_complete(ctx)
            raise

    @staticmethod
    def _check_context(
        engine: TextEngine, tokens: list[int], params: SamplingParams, *, param: str
    ) -> None:
        limit = engine.context_length
        wanted = len(tokens) + (params.max_tokens or 1)
        if len(tokens) >= limit or (params.max_tokens is not None and wanted > limit):
            asked = f" + {params.max_tokens} completion tokens" if params.max_tokens else ""
            raise ContextLengthExceededError(
                f"This model's maximum context length is {limit} tokens, but {len(tokens)} "
                f"prompt tokens{asked} were requested. Shorten the {param} or lower max_tokens.",
                param=param,
            )

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
        parser = ToolCallParser() if prepared.parses_tools else None
        positions = 0
        # A guarding filter (one with ``blocked``) may hold text back and stop the answer; the
        # tokens' logprobs then wait with the text, so a stopped answer leaks none of them.
        guarded = any(hasattr(f, "blocked") for f in filters)
        held: tuple[TokenLogprob, ...] = ()
        stream: AsyncIterator[GenerationChunk]
        if prepared.remote is not None:
            stream = prepared.remote.chunks(index, params)
        else:
            assert prepared.engine is not None
            stream = generate_async(
                prepared.engine, prepared.prompt_tokens, params, constraint=prepared.constraint
            )
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
                ctx.output_text += text
                if text or logprobs:
                    yield ContentDelta(index, text, logprobs)
                for call in calls:
                    ctx.output_text += call.arguments
                    yield ToolCallDelta(index, positions, call)
                    positions += 1
                if ending:
                    reason: FinishReason = (
                        "content_filter" if blocked else chunk.finish_reason or "stop"
                    )
                    if positions and reason == "stop":
                        reason = "tool_calls"
                    ctx.attributes["finish_reason"] = reason  # a cached answer replays it
                    yield ChoiceEnd(index, reason)
                    return


def _chosen_tools(request: ChatRequest) -> list[ToolSpec]:
    if request.tool_choice in ("auto", "required"):
        return list(request.tools)
    named = [tool for tool in request.tools if tool.name == request.tool_choice]
    if not named:
        raise InvalidRequestError(
            f"tool_choice names the function '{request.tool_choice}', which is not in tools.",
            param="tool_choice",
        )
    return named
