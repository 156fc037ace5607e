"""Routing: a routed model name → a plan of targets → a remote generation that fails over.

``Router`` knows the routes, their targets, the providers' clients and every target's health;
``ember.services.gateway`` asks it for a plan once the guard has seen the request.

A remote generation is opened before the response starts: the first target that returns a
first token wins, with retries (jittered exponential backoff that honours ``Retry-After``)
and failover on 429, 5xx, timeouts and connection errors. After the first token a failure
cannot move to another target: the stream ends with an SSE error event.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ember.core.chat_template import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from ember.core.types import (
    ChatMessage,
    FinishReason,
    GenerationChunk,
    OutputConstraint,
    SamplingParams,
    TokenLogprob,
    ToolSpec,
    TopLogprob,
)
from ember.errors import (
    ContentPolicyViolationError,
    EmberError,
    InvalidRequestError,
    RateLimitError,
    ServiceUnavailableError,
)
from ember.route.health import TargetHealth
from ember.route.policy import RoutePlan, Target, plan_route
from ember.route.provider import RemoteProvider, UpstreamError
from ember.services.pipeline import RequestContext
from ember.settings import RouteConfig, Settings

LOCAL = "local"
MAX_RETRY_SLEEP_S = 5.0
_FINISH: set[str] = {"stop", "length", "tool_calls", "content_filter"}


class UpstreamFailedError(EmberError):
    """Every target of a route failed, or the chosen one failed after the first token."""

    status_code = 502
    default_code = "upstream_error"


def is_sensitive(ctx: RequestContext) -> bool:
    """The guard found personal data that reaches the model, or the policy is local_only."""
    guard = ctx.attributes.get("guard") or {}
    action = guard.get("pii_action")
    if action == "local_only" or ctx.attributes.get("local_only"):
        return True
    return bool(guard.get("pii")) and action != "redact"


def message_dict(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:
        out["name"] = message.name
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def upstream_payload(
    model: str,
    messages: list[ChatMessage],
    params: SamplingParams,
    response_format: OutputConstraint | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "messages": [message_dict(m) for m in messages],
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.max_tokens is not None:
        payload["max_tokens"] = params.max_tokens
    if params.stop:
        payload["stop"] = list(params.stop)
    if params.seed is not None:
        payload["seed"] = params.seed
    if params.presence_penalty:
        payload["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty:
        payload["frequency_penalty"] = params.frequency_penalty
    if params.logit_bias:
        payload["logit_bias"] = {str(token): bias for token, bias in params.logit_bias}
    if params.logprobs:
        payload["logprobs"] = True
        if params.top_logprobs:
            payload["top_logprobs"] = params.top_logprobs
    if response_format is not None and response_format.kind == "json_object":
        payload["response_format"] = {"type": "json_object"}
    elif response_format is not None and response_format.kind == "json_schema":
        schema = {"name": "response", "schema": response_format.schema or {}}
        payload["response_format"] = {"type": "json_schema", "json_schema": schema}
    return payload


def upstream_tools(
    tools: tuple[ToolSpec, ...], tool_choice: str, parallel_tool_calls: bool
) -> dict[str, Any]:
    """The request's functions and tool choice, as the provider's chat API takes them."""
    functions = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        if tool.strict:
            function["strict"] = True
        functions.append({"type": "function", "function": function})
    choice: Any = tool_choice
    if tool_choice not in ("auto", "none", "required"):
        choice = {"type": "function", "function": {"name": tool_choice}}
    out: dict[str, Any] = {"tools": functions, "tool_choice": choice}
    if not parallel_tool_calls:
        out["parallel_tool_calls"] = False
    return out


def render_tool_calls(calls: list[dict[str, Any]]) -> str:
    """A provider's tool calls as the text the tool-call parser reads, so a remote answer's
    calls reach the client through the same path as a local model's (with Ember's ids)."""
    parts = []
    for call in calls:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError as exc:
            raise UpstreamError("the provider sent tool call arguments that are not JSON") from exc
        body = json.dumps({"name": function.get("name"), "arguments": arguments})
        parts.append(f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}")
    return "".join(parts)


def upstream_logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    """A choice's ``logprobs.content`` from the provider, as the engines report them."""
    content = (choice.get("logprobs") or {}).get("content") or []

    def raw(item: dict[str, Any]) -> tuple[int, ...]:
        found = item.get("bytes")
        return tuple(found) if found else tuple(str(item.get("token", "")).encode())

    return tuple(
        TokenLogprob(
            token=str(item.get("token", "")),
            logprob=float(item.get("logprob", 0.0)),
            bytes=raw(item),
            top=tuple(
                TopLogprob(str(t.get("token", "")), float(t.get("logprob", 0.0)), raw(t))
                for t in item.get("top_logprobs") or []
            ),
        )
        for item in content
        if isinstance(item, dict)
    )


def _finish(value: Any) -> FinishReason:
    return value if value in _FINISH else "stop"


def estimate_tokens(messages: list[ChatMessage]) -> int:
    """An upper bound of a prompt's tokens: its UTF-8 bytes plus a little per message."""
    return sum(len((m.content or "").encode()) + 8 for m in messages) + 8


class Router:
    """Routes, their targets, the providers' clients and every target's health."""

    def __init__(self, settings: Settings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()
        self.providers = {
            name: RemoteProvider(name, config) for name, config in settings.providers.items()
        }
        self.health: dict[str, TargetHealth] = {}
        self.targets: dict[str, list[Target]] = {
            name: [self._target(spec) for spec in route.targets]
            for name, route in settings.routes.items()
        }

    def _target(self, spec: str) -> Target:
        provider, sep, model = spec.partition("/")
        if not sep or not model:
            raise ValueError(f"route target {spec!r} must be 'local/MODEL' or 'PROVIDER/MODEL'")
        if provider == LOCAL:
            self.health.setdefault(spec, TargetHealth())
            return Target(spec, LOCAL, model, local=True, trusted=True)
        config = self.settings.providers.get(provider)
        if config is None:
            raise ValueError(f"route target {spec!r} names no provider [providers.{provider}]")
        self.health.setdefault(
            spec,
            TargetHealth(
                failure_threshold=config.breaker_failures, cooldown_s=config.breaker_cooldown_s
            ),
        )
        return Target(
            spec,
            provider,
            model,
            local=False,
            trusted=config.trusted,
            input_price=config.input_price,
            output_price=config.output_price,
        )

    def handles(self, model: str) -> bool:
        return model in self.settings.routes

    def max_prices(self, model: str) -> tuple[float, float]:
        """The highest input and output prices (USD per M tokens) a request may incur."""
        targets = self.targets.get(model, [])
        return (
            max((t.input_price for t in targets), default=0.0),
            max((t.output_price for t in targets), default=0.0),
        )

    def plan(self, model: str, *, sensitive: bool) -> RoutePlan:
        route: RouteConfig = self.settings.routes[model]
        return plan_route(
            route, self.targets[model], sensitive=sensitive, health=self.health, rng=self.rng
        )

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()

    def refuse_empty(self, model: str, *, sensitive: bool) -> EmberError:
        if sensitive:
            return ContentPolicyViolationError(
                f"The request is sensitive (personal data or a local_only policy) and the "
                f"route '{model}' has no local or trusted target.",
                param="model",
            )
        return InvalidRequestError(
            f"No target of the route '{model}' passes its cost ceilings.",
            param="model",
            code="no_eligible_target",
        )


@dataclass
class _Opened:
    target: Target
    chunks: AsyncIterator[GenerationChunk]
    first: GenerationChunk | None


@dataclass
class RemoteGeneration:
    """A request on a remote target; ``open`` picks the target before the response starts."""

    router: Router
    plan: RoutePlan
    ctx: RequestContext
    stream: bool = False
    response_format: OutputConstraint | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    parallel_tool_calls: bool = True
    opened: _Opened | None = None
    attempts: list[str] = field(default_factory=list)
    _used: bool = False

    async def open(self, params: SamplingParams) -> None:
        self.ctx.attributes["cost_usd"] = 0.0
        self.opened = await self._first_token(params, list(self.plan.targets))
        self.ctx.attributes["route"] = self.opened.target.name

    async def chunks(self, index: int, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        """Choice ``index``: the call opened for the first, a fresh one for the others."""
        assert self.opened is not None
        opened = self.opened
        if index > 0 or (opened.first is None and self._used):
            others = [t for t in self.plan.targets if t != opened.target]
            opened = await self._first_token(params, [opened.target, *others])
        self._used = True
        if opened.first is not None:
            yield opened.first
        try:
            async for chunk in opened.chunks:
                yield chunk
        except UpstreamError as exc:
            self.router.health[opened.target.name].record_failure()
            raise UpstreamFailedError(
                f"The provider for '{opened.target.name}' failed after the answer had started: "
                f"{exc.message}."
            ) from exc

    async def _first_token(self, params: SamplingParams, targets: list[Target]) -> _Opened:
        route = self.router.settings.routes[self.ctx.model]
        last: UpstreamError | None = None
        for target in targets:
            if target.local:
                continue  # a remote plan's local fallbacks are not generated here
            health = self.router.health[target.name]
            for attempt in range(route.retries + 1):
                if not health.available():
                    self.attempts.append(f"{target.name}: breaker open")
                    break
                started = time.perf_counter()
                chunks = self._call(target, params, started)
                try:
                    first = await anext(chunks)
                except StopAsyncIteration:
                    first = None
                except UpstreamError as exc:
                    health.record_failure()
                    self.attempts.append(f"{target.name}: {exc.message}")
                    last = exc
                    if not exc.retryable:
                        raise _client_error(exc) from exc
                    if attempt < route.retries:
                        delay = 0.05 * (2**attempt) * (0.5 + self.router.rng.random())
                        if exc.retry_after is not None:
                            if exc.retry_after > MAX_RETRY_SLEEP_S:
                                break
                            delay = max(delay, exc.retry_after)
                        await asyncio.sleep(delay)
                    continue
                health.record_success((time.perf_counter() - started) * 1000)
                return _Opened(target, chunks, first)
        self.ctx.attributes["route_attempts"] = self.attempts
        if (
            last is not None
            and last.status == 429
            and all("429" in a for a in self.attempts if "breaker" not in a)
        ):
            raise RateLimitError(
                f"Every target of the route '{self.ctx.model}' is rate limited.",
                headers={"retry-after": str(int(last.retry_after or 1))},
            )
        if last is None:
            raise ServiceUnavailableError(
                f"Every remote target of the route '{self.ctx.model}' is unavailable "
                "(circuit breakers open)."
            )
        raise UpstreamFailedError(
            f"Every target of the route '{self.ctx.model}' failed; last: {last.message}."
        )

    async def _call(
        self, target: Target, params: SamplingParams, started: float
    ) -> AsyncIterator[GenerationChunk]:
        provider = self.router.providers[target.provider]
        payload = upstream_payload(target.model, self.ctx.messages, params, self.response_format)
        if self.tools:
            payload.update(upstream_tools(self.tools, self.tool_choice, self.parallel_tool_calls))
        usage = self.ctx.usage
        if not self.stream:
            body = await provider.complete(payload)
            choice = body["choices"][0]
            counted = body.get("usage") or {}
            made = choice["message"].get("tool_calls")
            text = render_tool_calls(made) if made else choice["message"].get("content") or ""
            self.ctx.first_token_at = self.ctx.first_token_at or time.perf_counter()
            prompt = int(counted.get("prompt_tokens") or estimate_tokens(self.ctx.messages) // 4)
            completion = int(counted.get("completion_tokens") or max(1, len(text) // 4))
            self._account(target, prompt, completion)
            yield GenerationChunk(
                text=text,
                tokens=completion,
                logprobs=upstream_logprobs(choice),
                finish_reason=_finish(choice.get("finish_reason")),
            )
            return
        payload["stream_options"] = {"include_usage": True}
        finish: FinishReason | None = None
        pieces = 0
        counted = {}
        calls: dict[int, dict[str, Any]] = {}  # streamed in fragments: joined, sent at the end
        async for chunk in provider.stream(payload):
            if chunk.get("usage"):
                counted = chunk["usage"]
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if content:
                    pieces += 1
                    if self.ctx.first_token_at is None:
                        self.ctx.first_token_at = time.perf_counter()
                    yield GenerationChunk(text=content, logprobs=upstream_logprobs(choice))
                for fragment in delta.get("tool_calls") or []:
                    call = calls.setdefault(
                        int(fragment.get("index") or 0), {"function": {"name": "", "arguments": ""}}
                    )
                    function = fragment.get("function") or {}
                    call["function"]["name"] += function.get("name") or ""
                    call["function"]["arguments"] += function.get("arguments") or ""
                if choice.get("finish_reason"):
                    finish = _finish(choice["finish_reason"])
        if calls:
            pieces += 1
            yield GenerationChunk(text=render_tool_calls([calls[i] for i in sorted(calls)]))
        prompt = int(counted.get("prompt_tokens") or estimate_tokens(self.ctx.messages) // 4)
        completion = int(counted.get("completion_tokens") or pieces)
        self._account(target, prompt, completion)
        del usage
        yield GenerationChunk(tokens=completion, finish_reason=finish or "stop")

    def _account(self, target: Target, prompt: int, completion: int) -> None:
        self.ctx.usage.prompt_tokens += prompt
        cost = target.cost_usd(prompt, completion)
        self.ctx.attributes["cost_usd"] = self.ctx.attributes.get("cost_usd", 0.0) + cost


def _client_error(exc: UpstreamError) -> EmberError:
    """A 4xx other than 429: the request's own fault, passed on as the provider said it."""
    detail = (exc.body or {}).get("error") or {}
    err = InvalidRequestError(
        str(detail.get("message") or exc.message),
        param=detail.get("param"),
        code=detail.get("code") or "upstream_rejected",
    )
    return err
