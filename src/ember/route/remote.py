"""A generation on a remote target: opened before the response starts, failing over until then.

The first target that returns a first token wins, with retries (jittered exponential backoff
that honours ``Retry-After``) and failover on 429, 5xx, timeouts and connection errors. Each
failed try is kept as an :class:`Attempt` that says what kind of failure it was, so "every
target is rate limited" is a fact about the attempts, not about their wording. After the
first token a failure cannot move to another target: the stream ends with an SSE error event.

A provider's tool calls arrive as JSON and leave as :class:`~ember.core.types.ToolCall`
values on the chunks (``GenerationChunk.tool_calls``), never as text to be parsed again.
The errors a client sees name the target and what went wrong (a status, a timeout), never
the provider's own text, except a 4xx other than 404 and 429, which is the request's fault
and is passed on as the provider said it (in OpenAI's error shape or vLLM's), never failed
over. While a call is open on a target it counts in ``Router.in_flight``, which the
``load`` balance reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ember.core.types import (
    ChatMessage,
    FinishReason,
    GenerationChunk,
    OutputConstraint,
    SamplingParams,
    ToolSpec,
)
from ember.errors import (
    EmberError,
    InvalidRequestError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamFailedError,
)
from ember.route.policy import RoutePlan, Target
from ember.route.provider import UpstreamError
from ember.route.router import Router
from ember.route.upstream import (
    upstream_finish,
    upstream_logprobs,
    upstream_payload,
    upstream_tool_calls,
    upstream_tools,
)

if TYPE_CHECKING:
    # Only its fields are used; the typed request context in ``ember.core`` replaces it.
    from ember.core.request_context import RequestContext

MAX_RETRY_SLEEP_S = 5.0

FailureKind = Literal["breaker_open", "rate_limited", "failed"]


@dataclass(frozen=True)
class Attempt:
    """One try of a target that did not serve, and the kind of failure it was."""

    target: str
    failure: FailureKind
    detail: str = ""  # in Ember's words: "cloud answered 503", "cloud timed out"

    def __str__(self) -> str:
        return f"{self.target}: {'breaker open' if self.failure == 'breaker_open' else self.detail}"


def estimate_tokens(messages: list[ChatMessage]) -> int:
    """An upper bound of a prompt's tokens: its UTF-8 bytes plus a little per message."""
    return sum(len((m.content or "").encode()) + 8 for m in messages) + 8


@dataclass
class _Opened:
    target: Target
    chunks: AsyncGenerator[GenerationChunk, None]
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
    attempts: list[Attempt] = field(default_factory=list)
    _used: bool = False

    async def open(self, params: SamplingParams) -> None:
        self.ctx.route.cost_usd = 0.0
        self.opened = await self._first_token(params, list(self.plan.targets))
        self.ctx.route.target = self.opened.target.name

    async def chunks(self, index: int, params: SamplingParams) -> AsyncIterator[GenerationChunk]:
        """Choice ``index``: the call opened for the first, a fresh one for the others."""
        assert self.opened is not None
        opened = self.opened
        if index > 0 or (opened.first is None and self._used):
            others = [t for t in self.plan.targets if t != opened.target]
            opened = await self._first_token(params, [opened.target, *others])
        self._used = True
        try:
            if opened.first is not None:
                yield opened.first
            async for chunk in opened.chunks:
                yield chunk
        except UpstreamError as exc:
            self.router.health[opened.target.name].record_failure()
            raise UpstreamFailedError(
                f"The provider for '{opened.target.name}' failed after the answer had started: "
                f"{exc.message}."
            ) from exc
        finally:
            await opened.chunks.aclose()  # ends the call's count in flight, even if abandoned

    async def _first_token(self, params: SamplingParams, targets: list[Target]) -> _Opened:
        route = self.router.settings.routes[self.ctx.model]
        last: UpstreamError | None = None
        for target in targets:
            if target.local:
                continue  # a remote plan's local fallbacks are not generated here
            health = self.router.health[target.name]
            for attempt in range(route.retries + 1):
                if not health.available():
                    self.attempts.append(Attempt(target.name, "breaker_open"))
                    break
                started = time.perf_counter()
                chunks = self._call(target, params, started)
                try:
                    first = await anext(chunks)
                except StopAsyncIteration:
                    first = None
                except UpstreamError as exc:
                    health.record_failure()
                    kind: FailureKind = "rate_limited" if exc.status == 429 else "failed"
                    self.attempts.append(Attempt(target.name, kind, exc.message))
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
        self.ctx.route.attempts = list(self.attempts)
        tried = [a for a in self.attempts if a.failure != "breaker_open"]
        if last is not None and all(a.failure == "rate_limited" for a in tried):
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
            f"Every target of the route '{self.ctx.model}' failed; last: {tried[-1]}."
        )

    async def _call(
        self, target: Target, params: SamplingParams, started: float
    ) -> AsyncGenerator[GenerationChunk, None]:
        self.router.in_flight[target.name] += 1
        try:
            async with aclosing(self._generate(target, params)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            self.router.in_flight[target.name] -= 1

    async def _generate(
        self, target: Target, params: SamplingParams
    ) -> AsyncGenerator[GenerationChunk, None]:
        provider = self.router.providers[target.provider]
        payload = upstream_payload(target.model, self.ctx.messages, params, self.response_format)
        if self.tools:
            payload.update(upstream_tools(self.tools, self.tool_choice, self.parallel_tool_calls))
        if not self.stream:
            body = await provider.complete(payload)
            choice = body["choices"][0]
            counted = body.get("usage") or {}
            message = choice["message"]
            text = message.get("content") or ""
            calls = upstream_tool_calls(message.get("tool_calls") or [])
            self.ctx.first_token_at = self.ctx.first_token_at or time.perf_counter()
            prompt = int(counted.get("prompt_tokens") or estimate_tokens(self.ctx.messages) // 4)
            written = len(text) + sum(len(c.name) + len(c.arguments) for c in calls)
            completion = int(counted.get("completion_tokens") or max(1, written // 4))
            self._account(target, prompt, completion)
            yield GenerationChunk(
                text=text,
                tokens=completion,
                logprobs=upstream_logprobs(choice),
                finish_reason=upstream_finish(choice.get("finish_reason")),
                tool_calls=calls,
            )
            return
        payload["stream_options"] = {"include_usage": True}
        finish: FinishReason | None = None
        pieces = 0
        counted = {}
        fragments: dict[int, dict[str, Any]] = {}  # streamed in fragments: joined at the end
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
                    call = fragments.setdefault(
                        int(fragment.get("index") or 0), {"function": {"name": "", "arguments": ""}}
                    )
                    function = fragment.get("function") or {}
                    call["function"]["name"] += function.get("name") or ""
                    call["function"]["arguments"] += function.get("arguments") or ""
                if choice.get("finish_reason"):
                    finish = upstream_finish(choice["finish_reason"])
        if fragments:
            pieces += 1
            calls = upstream_tool_calls([fragments[i] for i in sorted(fragments)])
            yield GenerationChunk(tool_calls=calls)
        prompt = int(counted.get("prompt_tokens") or estimate_tokens(self.ctx.messages) // 4)
        completion = int(counted.get("completion_tokens") or pieces)
        self._account(target, prompt, completion)
        yield GenerationChunk(tokens=completion, finish_reason=finish or "stop")

    def _account(self, target: Target, prompt: int, completion: int) -> None:
        self.ctx.usage.prompt_tokens += prompt
        cost = target.cost_usd(prompt, completion)
        self.ctx.route.cost_usd += cost


def _client_error(exc: UpstreamError) -> EmberError:
    """A 4xx other than 404 and 429: the request's own fault, passed on as the provider said
    it. OpenAI nests the error (``{"error": {...}}``); vLLM before 0.10 sends it bare
    (``{"object": "error", "message", "type", "param", "code": 400}``, a numeric code)."""
    body = exc.body or {}
    nested = body.get("error")
    detail: dict[str, Any] = nested if isinstance(nested, dict) else body
    message, param, code = detail.get("message"), detail.get("param"), detail.get("code")
    return InvalidRequestError(
        message if isinstance(message, str) and message else exc.message,
        param=param if isinstance(param, str) else None,
        code=code if isinstance(code, str) and code else "upstream_rejected",
    )
