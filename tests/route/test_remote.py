"""A remote generation against fake providers (real HTTP servers on loopback), without Ember's
server: which error a failed route is, what its message may say, and the provider's tool calls
arriving as ``ToolCall`` values."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ember.core.request_context import RequestContext
from ember.core.types import ChatMessage, GenerationChunk, SamplingParams, ToolCall, ToolSpec
from ember.errors import RateLimitError, UpstreamFailedError
from ember.route.provider import UpstreamError
from ember.route.remote import RemoteGeneration
from ember.route.router import Router
from ember.route.upstream import upstream_tool_calls
from ember.settings import ProviderConfig, RouteConfig, Settings
from tests.fake_provider import Action, FakeProvider

WEATHER = ToolSpec(
    name="get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    first, second = FakeProvider().start(), FakeProvider().start()
    yield first, second
    first.stop()
    second.stop()


def _router(first: FakeProvider, second: FakeProvider) -> Router:
    # "edge429" is a name with "429" in it: only the attempts' kinds may decide a 429.
    return Router(
        Settings(
            providers={
                "edge429": ProviderConfig(base_url=first.base_url, timeout_s=5.0),
                "backup": ProviderConfig(base_url=second.base_url, timeout_s=5.0),
            },
            routes={"r": RouteConfig(targets=["edge429/m", "backup/m"], retries=0)},
        )
    )


async def _generate(router: Router, *, stream: bool, tools: bool = False) -> list[GenerationChunk]:
    ctx = RequestContext(
        endpoint="chat", model="r", messages=[ChatMessage(role="user", content="Oslo")]
    )
    call = RemoteGeneration(
        router,
        router.plan("r", sensitive=False),
        ctx,
        stream=stream,
        tools=(WEATHER,) if tools else (),
    )
    try:
        await call.open(SamplingParams())
        return [chunk async for chunk in call.chunks(0, SamplingParams())]
    finally:
        await router.close()


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (("429", 30), ("429", 30), RateLimitError),
        ("500", ("429", 30), UpstreamFailedError),  # the 500 came from a name with "429" in it
        (("429", 30), "500", UpstreamFailedError),
    ],
)
def test_a_route_is_rate_limited_only_when_every_attempt_was(
    providers: tuple[FakeProvider, FakeProvider],
    first: Action,
    second: Action,
    expected: type[Exception],
) -> None:
    for provider, action in zip(providers, (first, second), strict=True):
        provider.reset()
        provider.script(action)
    with pytest.raises(expected):
        asyncio.run(_generate(_router(*providers), stream=False))


@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_route_names_the_target_and_status_never_the_provider_text(
    providers: tuple[FakeProvider, FakeProvider], stream: bool
) -> None:
    for provider in providers:
        provider.reset()
        provider.script("500")
    with pytest.raises(UpstreamFailedError) as failed:
        asyncio.run(_generate(_router(*providers), stream=stream))
    assert "backup/m" in failed.value.message and "500" in failed.value.message
    assert "boom" not in failed.value.message  # the fake provider's error message


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_arrive_as_tool_calls(
    providers: tuple[FakeProvider, FakeProvider], stream: bool
) -> None:
    for provider in providers:
        provider.reset()
    chunks = asyncio.run(_generate(_router(*providers), stream=stream, tools=True))
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments) == {"city": "Oslo"}
    assert calls[0].id.startswith("call_") and calls[0].id != "call_fake0"  # Ember's ids
    assert "".join(c.text for c in chunks) == ""  # nothing rendered as text
    assert chunks[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        (
            [{"function": {"name": "f", "arguments": '{"a": "雨"}'}}],
            [ToolCall("", "f", '{"a": "雨"}')],
        ),
        ([{"function": {"name": "f", "arguments": ""}}], [ToolCall("", "f", "{}")]),
        ([{"function": {"arguments": "{}"}}], []),  # no name: dropped
    ],
)
def test_upstream_tool_calls(calls: list[dict[str, Any]], expected: list[ToolCall]) -> None:
    got = upstream_tool_calls(calls)
    assert [(c.name, c.arguments) for c in got] == [(c.name, c.arguments) for c in expected]


def test_tool_call_arguments_that_are_not_json_are_the_provider_failing() -> None:
    with pytest.raises(UpstreamError):
        upstream_tool_calls([{"function": {"name": "f", "arguments": "{not json"}}])
