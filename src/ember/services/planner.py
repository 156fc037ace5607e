"""The one flow of a generation request, before its first token: context, stages, source.

Every generation (chat, completions, responses, grounded answers, the judge, synthetic
data) is planned here, once:

1. the model name is resolved once: a route name (``[routes]``) or a local model;
2. a typed :class:`~ember.core.request_context.RequestContext` is made, carrying who asks;
3. the pipeline's stages see it (audit, keys, guard): they may rewrite the messages or
   refuse the request, and a refusal is still completed, so audit and usage record it;
4. a source is chosen: the response cache (an exact or a semantic hit), a remote target
   (the router's plan, failing over before the first token, the local target last), or a
   local engine, whose prompt is rendered and checked by ``local_prompt``.

The result is a :class:`PreparedGeneration` that ``TextGenerationService.run`` streams.
Nothing here knows HTTP; nothing below ``services`` imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, replace

from ember.core.request_context import ANONYMOUS, Caller, RequestContext
from ember.core.types import ChatMessage, SamplingParams
from ember.engines.base import EmbeddingEngine, TextEngine
from ember.engines.manager import ModelManager
from ember.errors import (
    EmberError,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamFailedError,
)
from ember.models.registry import ModelRegistry
from ember.models.spec import ModelSpec
from ember.route.cache import CachedAnswer, ResponseCache, canonical_key
from ember.route.remote import RemoteGeneration
from ember.route.router import Router, is_sensitive
from ember.services.cache_replay import CacheReplay
from ember.services.generation_types import ChatRequest, PreparedGeneration
from ember.services.guard_stage import settle_deferred_pii
from ember.services.local_prompt import prepare_local_chat, prepare_local_completion
from ember.services.pipeline import Pipeline
from ember.settings import Settings


class Planner:
    """Plans every generation request (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        manager: ModelManager,
        pipeline: Pipeline,
        router: Router,
        cache: ResponseCache,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.manager = manager
        self.pipeline = pipeline
        self.router = router
        self.cache = cache

    async def prepare_chat(
        self, request: ChatRequest, *, endpoint: str, caller: Caller = ANONYMOUS
    ) -> PreparedGeneration:
        routed = self.router.handles(request.model)
        spec = None if routed else self._chat_model(request.model, purpose="chat", caller=caller)
        ctx = RequestContext(
            endpoint=endpoint,
            model=request.model if spec is None else spec.id,
            messages=list(request.messages),
            max_tokens=request.params.max_tokens,
            caller=caller,
        )
        async with self.refusal_recorded(ctx):
            await self.pipeline.on_request(ctx)
            cached = await self._lookup(request, ctx)
            if cached is not None:
                return self._replay(cached, request, ctx)
            if spec is None:
                remote, spec = await self._route(request, ctx)
                if remote is not None:
                    return remote
            else:
                ctx.route.target = f"local/{spec.id}"
            engine = await self._engine(spec)
            prepared = prepare_local_chat(spec, engine, request, ctx)
        if prepared.params.max_tokens is None and ctx.max_tokens_cap:
            prepared.params = replace(prepared.params, max_tokens=ctx.max_tokens_cap)
        return prepared

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
        if self.router.handles(model):
            # A route: its targets speak chat completions, so the prompt is one user message.
            routed = ChatRequest(
                model=model,
                messages=[ChatMessage(role="user", content=prompt)],
                params=params,
                n=n,
                stream=stream,
            )
            return await self.prepare_chat(routed, endpoint="completions", caller=caller)
        spec = self._chat_model(model, purpose="completions", caller=caller)
        ctx = RequestContext(
            endpoint="completions",
            model=spec.id,
            messages=[ChatMessage(role="user", content=prompt)],
            caller=caller,
        )
        async with self.refusal_recorded(ctx):
            await self.pipeline.on_request(ctx)
            engine = await self._engine(spec)
            return prepare_local_completion(spec, engine, params, ctx, n=n)

    @asynccontextmanager
    async def refusal_recorded(self, ctx: RequestContext) -> AsyncIterator[None]:
        """A request refused after the pipeline saw it still completes the pipeline, so the
        audit log and usage record the refusal."""
        try:
            yield
        except EmberError:
            ctx.status = "refused"
            await self.pipeline.on_complete(ctx)
            raise

    # --- the sources ------------------------------------------------------------------------

    def _chat_model(self, name: str, *, purpose: str, caller: Caller = ANONYMOUS) -> ModelSpec:
        spec = self.registry.resolve(name)
        if spec.owner is not None and not caller.may_see(spec.owner):  # another tenant's
            raise ModelNotFoundError(name)
        if spec.kind == "embedding":
            raise InvalidRequestError(
                f"The model '{name}' is an embedding model; it cannot be used for {purpose}.",
                param="model",
                code="model_not_supported",
            )
        return spec

    async def _engine(self, spec: ModelSpec) -> TextEngine:
        engine = await self.manager.get(spec)
        assert isinstance(engine, TextEngine)
        engine.check_capacity()  # 503 + Retry-After now, before a stream starts
        return engine

    def _replay(
        self, cached: CachedAnswer, request: ChatRequest, ctx: RequestContext
    ) -> PreparedGeneration:
        ctx.cache.hit = True
        ctx.route.target, ctx.route.reason, ctx.route.cost_usd = "cache", "cache hit", 0.0
        ctx.usage.prompt_tokens = cached.prompt_tokens
        return PreparedGeneration(
            spec=ModelSpec(id=ctx.model, engine="cache", kind="chat", source="config"),
            engine=None,
            ctx=ctx,
            prompt_tokens=[],
            params=request.params,
            n=1,
            remote=CacheReplay(cached, ctx),
        )

    async def _route(
        self, request: ChatRequest, ctx: RequestContext
    ) -> tuple[PreparedGeneration | None, ModelSpec]:
        """A routed name: a remote target opened (failover before the first token), or the
        local target's model when it comes first or every remote one failed."""
        await settle_deferred_pii(ctx)
        sensitive = is_sensitive(ctx)
        plan = self.router.plan(ctx.model, sensitive=sensitive)
        ctx.route.reason = plan.reason
        if not plan.targets:
            raise self.router.refuse_empty(ctx.model, sensitive=sensitive)
        first = plan.targets[0]
        if not first.local:
            params = request.params
            if params.max_tokens is None and ctx.max_tokens_cap:
                params = replace(params, max_tokens=ctx.max_tokens_cap)
            call = RemoteGeneration(
                self.router,
                plan,
                ctx,
                stream=request.stream,
                response_format=request.response_format,
                tools=request.tools,
                tool_choice=request.tool_choice,
                parallel_tool_calls=request.parallel_tool_calls,
            )
            fallback = next((t for t in plan.targets if t.local), None)
            try:
                await call.open(params)
            except (UpstreamFailedError, RateLimitError, ServiceUnavailableError):
                if fallback is None:
                    raise
                first = fallback  # every remote target failed: the local one serves
                ctx.route.reason = f"{plan.reason}, remote failed"
            else:
                prepared = PreparedGeneration(
                    spec=ModelSpec(id=ctx.model, engine="route", kind="chat", source="config"),
                    engine=None,
                    ctx=ctx,
                    prompt_tokens=[],
                    params=params,
                    n=request.n,
                    remote=call,
                    parses_tools=bool(request.tools) and request.tool_choice != "none",
                )
                return prepared, prepared.spec
        ctx.route.target = first.name
        return None, self._chat_model(first.model, purpose="chat", caller=ctx.caller)

    # --- the response cache -----------------------------------------------------------------

    async def _lookup(self, request: ChatRequest, ctx: RequestContext) -> CachedAnswer | None:
        config = self.settings.cache
        caller = ctx.caller
        if not config.enabled or caller.no_cache or request.n != 1 or request.tools:
            return None
        if request.params.logprobs:  # a replay has no logprobs to give
            return None
        deterministic = request.params.temperature == 0
        if not (deterministic or request.params.seed is not None or caller.cache_opt_in):
            return None
        body = asdict(request)
        body.pop("stream", None)
        body["guard"] = ctx.guard.findings.get("pii_action")
        key = canonical_key(ctx.tenant, ctx.model, body)
        bucket = canonical_key(ctx.tenant, ctx.model, {})
        hit = self.cache.get(key)
        vector: tuple[float, ...] | None = None
        if hit is None and config.semantic and (deterministic or caller.cache_opt_in):
            vector = await self._embed(request)
            hit = self.cache.nearest(bucket, vector, config.semantic_threshold)
        if hit is None:
            ctx.cache.store = (key, bucket, vector)
        return hit

    async def _embed(self, request: ChatRequest) -> tuple[float, ...]:
        spec = self.registry.resolve(self.settings.cache.embedding_model)
        engine = await self.manager.get(spec)
        assert isinstance(engine, EmbeddingEngine)
        prompt = "\n".join(f"{m.role}: {m.content or ''}" for m in request.messages)

        def work() -> list[float]:
            with engine.lock:
                return engine.embed([prompt], input_type="query")[0]

        return tuple(await asyncio.to_thread(work))
