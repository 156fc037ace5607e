"""The gateway in front of chat generation: keys, budgets, cache and routing.

``Gateway.prepare_chat`` takes over ``TextGenerationService.prepare_chat`` for routed model
names and cacheable requests. It runs the pipeline (audit, keys, guard) first, so a cache hit
or a remote target is only reached by a request the guard let through; then:

1. **cache**: an exact hit (canonical request hash, per tenant and model) or a semantic one
   (embedding similarity) is replayed, streamed or not;
2. **route**: for a routed name, the guard's finding decides sensitivity and
   ``Router.plan`` orders the targets; a remote first target is opened here (failover
   before the first token), a local one goes down the text service's ordinary path.

``current_scope`` carries who is asking (the authenticated key) and their cache wishes from
the HTTP layer to the stages without threading them through every signature.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from ember.core.types import GenerationChunk, SamplingParams
from ember.engines.base import EmbeddingEngine
from ember.errors import (
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)
from ember.models.registry import ModelSpec
from ember.route.cache import CachedAnswer, ResponseCache, canonical_key
from ember.route.keys import Principal, guard_policy_for
from ember.route.limits import Ledger, Reservation
from ember.services.guard_stage import settle_deferred_pii
from ember.services.pipeline import OutputFilter, RequestContext
from ember.services.routing import (
    RemoteGeneration,
    Router,
    UpstreamFailedError,
    estimate_tokens,
    is_sensitive,
)
from ember.settings import Settings

if TYPE_CHECKING:
    from ember.services.text_generation import (
        ChatRequest,
        PreparedGeneration,
        TextGenerationService,
    )

DEFAULT_COMPLETION_ALLOWANCE = 1024


@dataclass(frozen=True)
class RequestScope:
    principal: Principal | None = None
    no_cache: bool = False  # Cache-Control: no-cache
    cache_opt_in: bool = False  # "ember": {"cache": true}


NO_SCOPE = RequestScope()
current_scope: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "ember_request_scope", default=None
)


def request_scope() -> RequestScope:
    return current_scope.get() or NO_SCOPE


class KeyStage:
    """Puts the key's name on the request as its tenant, applies its model list and guard
    policy, and holds its budgets and rate limits (reserve now, settle at the end)."""

    name = "keys"

    def __init__(self, settings: Settings, ledger: Ledger, router: Router) -> None:
        self.settings = settings
        self.ledger = ledger
        self.router = router

    async def on_request(self, ctx: RequestContext) -> None:
        principal = request_scope().principal
        if principal is None:
            return
        ctx.attributes["tenant"] = principal.tenant
        key = principal.key
        if key is None:
            return
        if key.models is not None and ctx.model not in key.models:
            raise PermissionDeniedError(
                f"The key '{key.name}' may not use the model '{ctx.model}'.",
                param="model",
                code="model_not_allowed",
            )
        policy = guard_policy_for(self.settings, key.policy)
        if policy is not None:
            ctx.attributes["guard_policy"] = policy
        completion = ctx.max_tokens or DEFAULT_COMPLETION_ALLOWANCE
        if ctx.max_tokens is None and _has_budget(key):
            ctx.attributes["max_tokens_cap"] = completion
        prompt = estimate_tokens(ctx.messages)
        in_price, out_price = self.router.max_prices(ctx.model)
        usd = (prompt * in_price + completion * out_price) / 1e6
        ctx.attributes["reservation"] = self.ledger.reserve(
            key, usd=usd, tokens=prompt + completion
        )

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        return None

    async def on_complete(self, ctx: RequestContext) -> None:
        reservation = ctx.attributes.get("reservation")
        if not isinstance(reservation, Reservation):
            return
        if ctx.attributes.get("cache_hit"):
            self.ledger.settle(reservation, usd=0.0, tokens=0)
        else:
            usd = float(ctx.attributes.get("cost_usd", 0.0))
            self.ledger.settle(reservation, usd=usd, tokens=ctx.usage.total_tokens)


def _has_budget(key: Any) -> bool:
    return any(
        getattr(key, name) is not None
        for name in (
            "budget_usd_day",
            "budget_usd_month",
            "budget_tokens_day",
            "budget_tokens_month",
            "tpm",
        )
    )


class CacheStage:
    """Stores a finished, cacheable answer (the gateway marked it) in the cache."""

    name = "cache"

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    async def on_request(self, ctx: RequestContext) -> None:
        return None

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        return None

    async def on_complete(self, ctx: RequestContext) -> None:
        marked = ctx.attributes.get("cache_store")
        if not marked or ctx.status != "ok" or ctx.attributes.get("cache_hit"):
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
                finish_reason=ctx.attributes.get("finish_reason", "stop"),
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


class Gateway:
    def __init__(self, settings: Settings, router: Router, cache: ResponseCache) -> None:
        self.settings = settings
        self.router = router
        self.cache = cache

    def handles(self, model: str) -> bool:
        return self.router.handles(model) or self.settings.cache.enabled

    async def prepare_chat(
        self, text: TextGenerationService, request: ChatRequest, *, endpoint: str
    ) -> PreparedGeneration:
        from ember.services.text_generation import PreparedGeneration

        routed = self.router.handles(request.model)
        model = request.model if routed else text.registry.resolve(request.model).id
        ctx = RequestContext(
            endpoint=endpoint,
            model=model,
            messages=list(request.messages),
            max_tokens=request.params.max_tokens,
        )
        async with text._refusal_recorded(ctx):
            await text.pipeline.on_request(ctx)
            cached = await self._lookup(text, request, ctx)
            if cached is not None:
                ctx.attributes.update(cache_hit=True, route="cache", cost_usd=0.0)
                ctx.attributes["route_reason"] = "cache hit"
                ctx.usage.prompt_tokens = cached.prompt_tokens
                spec = ModelSpec(id=model, engine="cache", kind="chat", source="config")
                return PreparedGeneration(
                    spec=spec,
                    engine=None,
                    ctx=ctx,
                    prompt_tokens=[],
                    params=request.params,
                    n=1,
                    remote=CacheReplay(cached, ctx),
                )
            local_model = model
            if routed:
                await settle_deferred_pii(ctx)
                sensitive = is_sensitive(ctx)
                plan = self.router.plan(model, sensitive=sensitive)
                ctx.attributes["route_reason"] = plan.reason
                if not plan.targets:
                    raise self.router.refuse_empty(model, sensitive=sensitive)
                first = plan.targets[0]
                if not first.local:
                    params = request.params
                    cap = ctx.attributes.get("max_tokens_cap")
                    if params.max_tokens is None and cap:
                        params = replace(params, max_tokens=int(cap))
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
                        ctx.attributes["route_reason"] = f"{plan.reason}, remote failed"
                    else:
                        spec = ModelSpec(id=model, engine="route", kind="chat", source="config")
                        return PreparedGeneration(
                            spec=spec,
                            engine=None,
                            ctx=ctx,
                            prompt_tokens=[],
                            params=params,
                            n=request.n,
                            remote=call,
                            parses_tools=bool(request.tools) and request.tool_choice != "none",
                        )
                ctx.attributes["route"] = first.name
                local_model = first.model
            else:
                ctx.attributes.setdefault("route", f"local/{model}")
        prepared = await text.prepare_chat(
            replace(request, model=local_model), endpoint=endpoint, ctx=ctx
        )
        cap = ctx.attributes.get("max_tokens_cap")
        if prepared.params.max_tokens is None and cap:  # a budgeted key: bound the answer
            prepared.params = replace(prepared.params, max_tokens=int(cap))
        return prepared

    async def _lookup(
        self, text: TextGenerationService, request: ChatRequest, ctx: RequestContext
    ) -> CachedAnswer | None:
        config = self.settings.cache
        scope = request_scope()
        if not config.enabled or scope.no_cache or request.n != 1 or request.tools:
            return None
        if request.params.logprobs:  # a replay has no logprobs to give
            return None
        deterministic = request.params.temperature == 0
        if not (deterministic or request.params.seed is not None or scope.cache_opt_in):
            return None
        tenant = ctx.attributes.get("tenant")
        body = asdict(request)
        body.pop("stream", None)
        body["guard"] = (ctx.attributes.get("guard") or {}).get("pii_action")
        key = canonical_key(tenant, ctx.model, body)
        bucket = canonical_key(tenant, ctx.model, {})
        hit = self.cache.get(key)
        vector: tuple[float, ...] | None = None
        if hit is None and config.semantic and (deterministic or scope.cache_opt_in):
            vector = await self._embed(text, request)
            hit = self.cache.nearest(bucket, vector, config.semantic_threshold)
        if hit is None:
            ctx.attributes["cache_store"] = (key, bucket, vector)
        return hit

    async def _embed(self, text: TextGenerationService, request: ChatRequest) -> tuple[float, ...]:
        spec = text.registry.resolve(self.settings.cache.embedding_model)
        engine = await text.manager.get(spec)
        assert isinstance(engine, EmbeddingEngine)
        prompt = "\n".join(f"{m.role}: {m.content or ''}" for m in request.messages)

        def work() -> list[float]:
            with engine.lock:
                return engine.embed([prompt], input_type="query")[0]

        return tuple(await asyncio.to_thread(work))
