"""A vLLM server as a route target, without Ember's server: the active health checks against
the fake vLLM (a real HTTP server on loopback), vLLM's error bodies, the requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ember.core.request_context import RequestContext
from ember.core.types import ChatMessage, SamplingParams
from ember.errors import InvalidRequestError
from ember.route.probe import health_url
from ember.route.provider import UpstreamError, is_error_event
from ember.route.remote import RemoteGeneration, _client_error
from ember.route.router import Router
from ember.settings import ProviderConfig, RouteConfig, Settings
from tests.fake_vllm import FakeVLLM


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVLLM]:
    fake = FakeVLLM("m", "n").start()
    yield fake
    fake.stop()


@pytest.fixture()
def vllm(server: FakeVLLM) -> Iterator[FakeVLLM]:
    server.reset()
    server.served = {"m", "n"}
    yield server
    if server.thread is not None and not server.thread.is_alive():  # a test killed it
        server.revive()


def _router(vllm: FakeVLLM, *, retries: int = 0) -> Router:
    return Router(
        Settings(
            providers={
                "gpu": ProviderConfig(base_url=vllm.base_url, timeout_s=2.0, health_check_s=1.0)
            },
            routes={"r": RouteConfig(targets=["gpu/m", "gpu/n"], retries=retries)},
        )
    )


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://gpu:8001/v1", "http://gpu:8001/health"),
        ("http://gpu:8001/v1/", "http://gpu:8001/health"),
        ("https://api.example.com/openai/v1", "https://api.example.com/openai/health"),
        ("http://gpu:8001", "http://gpu:8001/health"),
    ],
)
def test_health_is_beside_the_api(base_url: str, expected: str) -> None:
    assert health_url(base_url) == expected


def test_a_check_takes_targets_out_of_rotation_and_back(vllm: FakeVLLM) -> None:
    router = _router(vllm)
    health = router.health

    async def check() -> tuple[bool, bool]:
        await router.checks.check("gpu")
        return health["gpu/m"].checked_ok, health["gpu/n"].checked_ok

    async def scenario() -> None:
        try:
            assert await check() == (True, True)
            vllm.served = {"m"}  # n dropped: only its target leaves
            assert await check() == (True, False)
            assert health["gpu/n"].check_detail == "gpu does not list the model n"
            vllm.healthy = False  # /health 503: every target of the server leaves
            assert await check() == (False, False)
            assert health["gpu/m"].check_detail == "gpu's /health answered 503"
            assert "health check failed" in router.plan("r", sensitive=False).reason
            vllm.healthy, vllm.served = True, {"m", "n"}
            for _ in range(3):
                health["gpu/m"].record_failure()
            assert health["gpu/m"].state == "open"
            vllm.kill()  # connection refused
            assert await check() == (False, False)
            assert health["gpu/m"].check_detail.startswith("gpu unreachable")
            vllm.revive()
            assert await check() == (True, True)
            assert health["gpu/m"].state == "closed"  # back at once, not after the cooldown
        finally:
            await router.close()

    asyncio.run(scenario())


def test_the_router_runs_the_checks_in_the_background(vllm: FakeVLLM) -> None:
    router = _router(vllm)

    async def scenario() -> None:
        router.start()
        tasks = list(router.checks._tasks)
        assert len(tasks) == 1  # one provider asks for checks
        try:
            vllm.healthy = False
            for _ in range(60):
                await asyncio.sleep(0.05)
                if not router.health["gpu/m"].checked_ok:
                    break
            assert not router.health["gpu/m"].checked_ok
        finally:
            await router.close()
        assert all(task.done() for task in tasks)  # close stopped them

    asyncio.run(scenario())


async def _generate(router: Router, *, stream: bool, max_tokens: int | None = 8) -> str:
    ctx = RequestContext(
        endpoint="chat", model="r", messages=[ChatMessage(role="user", content="hi")]
    )
    call = RemoteGeneration(router, router.plan("r", sensitive=False), ctx, stream=stream)
    params = SamplingParams(max_tokens=max_tokens)
    await call.open(params)
    assert sum(router.in_flight.values()) == 1  # open on one target
    return "".join([chunk.text async for chunk in call.chunks(0, params)])


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_counts_in_flight_until_it_ends(vllm: FakeVLLM, stream: bool) -> None:
    router = _router(vllm)

    async def scenario() -> str:
        try:
            return await _generate(router, stream=stream)
        finally:
            await router.close()

    assert asyncio.run(scenario()).startswith("echo:hi")
    assert sum(router.in_flight.values()) == 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_vllm_400_is_the_request_fault_and_not_failed_over(vllm: FakeVLLM, stream: bool) -> None:
    router = _router(vllm, retries=1)

    async def scenario() -> None:
        try:
            await _generate(router, stream=stream, max_tokens=100_000)
        finally:
            await router.close()

    with pytest.raises(InvalidRequestError) as refused:
        asyncio.run(scenario())
    assert "maximum context length is 512 tokens" in refused.value.message
    assert refused.value.code == "upstream_rejected"  # vLLM's numeric code is not OpenAI's
    assert len(vllm.received) == 1  # no retry, no other target
    assert sum(router.in_flight.values()) == 0


def test_a_model_the_server_does_not_serve_fails_over(vllm: FakeVLLM) -> None:
    vllm.served = {"n"}  # gpu/m answers 404: the next target serves
    router = _router(vllm)

    async def scenario() -> str:
        try:
            return await _generate(router, stream=False)
        finally:
            await router.close()

    assert asyncio.run(scenario()).startswith("echo:hi")
    assert [body["model"] for body in vllm.received] == ["m", "n"]


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        (  # vLLM before 0.10: bare, numeric code
            {
                "object": "error",
                "message": "bad",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
            "bad",
            None,
            "upstream_rejected",
        ),
        (  # OpenAI (and vLLM since 0.10): nested
            {
                "error": {
                    "message": "bad",
                    "type": "invalid_request_error",
                    "param": "n",
                    "code": "invalid_value",
                }
            },
            "bad",
            "n",
            "invalid_value",
        ),
        (None, "gpu answered 400", None, "upstream_rejected"),  # not JSON
        ({"error": "bad"}, "gpu answered 400", None, "upstream_rejected"),
    ],
)
def test_a_provider_4xx_body_in_either_shape(
    body: dict[str, object] | None, message: str, param: str | None, code: str
) -> None:
    error = _client_error(UpstreamError("gpu answered 400", status=400, retryable=False, body=body))
    assert (error.message, error.param, error.code, error.status_code) == (
        message,
        param,
        code,
        400,
    )


@pytest.mark.parametrize(
    ("event", "failed"),
    [
        ({"object": "error", "message": "engine dead", "type": "InternalServerError"}, True),
        ({"error": {"message": "boom", "type": "server_error"}}, True),
        ({"object": "chat.completion.chunk", "choices": []}, False),
    ],
)
def test_an_error_event_mid_stream_in_either_shape(event: dict[str, object], failed: bool) -> None:
    assert is_error_event(event) is failed
