"""Routing through the real server to fake remote providers, with the official openai client.

Two fake providers (``cloud``: untrusted and priced; ``backup``) run as real loopback HTTP
servers in this process; Ember runs as a subprocess. Each test uses its own target names, so
the targets' health (breakers, latency) of one test does not steer another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import SMALL_MODEL, RunningServer, client_for, start_server, stop_server
from tests.fake_provider import FakeProvider

PII = "My email is ada.lovelace@example.com and my phone is +44 20 7946 0958."


def gateway_config(cloud: FakeProvider, backup: FakeProvider) -> str:
    return f"""
preload = ["{SMALL_MODEL}"]
n_threads = 2
context_length = 2048

[cache]
enabled = false

[providers.cloud]
base_url = "{cloud.base_url}"
models = ["gpt-x"]
input_price = 1.0
output_price = 2.0
timeout_s = 1.0

[providers.backup]
base_url = "{backup.base_url}"
models = ["gpt-y"]
timeout_s = 1.0

[routes.smart]
targets = ["cloud/gpt-x", "local/{SMALL_MODEL}"]

[routes.failover]
targets = ["cloud/gpt-f1", "backup/gpt-f1"]
retries = 1

[routes.patient]
targets = ["cloud/gpt-p"]
retries = 1

[routes.slow]
targets = ["cloud/gpt-t", "backup/gpt-t"]
retries = 0

[routes.fragile]
targets = ["cloud/gpt-b", "backup/gpt-b"]
retries = 0

[routes.streamy]
targets = ["cloud/gpt-s", "backup/gpt-s"]
retries = 0

[routes.doomed]
targets = ["cloud/gpt-d"]
retries = 0

[routes.remote-only]
targets = ["cloud/gpt-r"]

[routes.resilient]
targets = ["cloud/gpt-l", "local/{SMALL_MODEL}"]
retries = 0

[routes.cheap]
targets = ["cloud/gpt-c", "backup/gpt-c"]
max_output_price = 1.0

[guard_policies.strict]
pii = "local_only"
"""


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    cloud, backup = FakeProvider().start(), FakeProvider().start()
    yield cloud, backup
    cloud.stop()
    backup.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeProvider, FakeProvider]
) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("gateway"), gateway_config(*fakes))
    yield server
    for opened in _clients.values():
        opened.close()
    _clients.clear()
    stop_server(server)


@pytest.fixture()
def cloud(fakes: tuple[FakeProvider, FakeProvider]) -> Iterator[FakeProvider]:
    fakes[0].reset()
    fakes[1].reset()
    yield fakes[0]


@pytest.fixture()
def backup(fakes: tuple[FakeProvider, FakeProvider], cloud: FakeProvider) -> FakeProvider:
    return fakes[1]


_clients: dict[str, openai.OpenAI] = {}


def shared_client(server: RunningServer) -> openai.OpenAI:
    """One client per server for the module, closed with it (no leaked sockets)."""
    if server.base_url not in _clients:
        _clients[server.base_url] = client_for(server)
    return _clients[server.base_url]


def ask(server: RunningServer, model: str, text: str = "Say hi", **kwargs: object):  # type: ignore[no-untyped-def]
    return shared_client(server).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=16, **kwargs
    )


def test_routed_model_answers_streamed_and_not(gateway: RunningServer, cloud: FakeProvider) -> None:
    raw = ask(gateway, "smart")
    completion = raw.parse()
    assert raw.headers["x-ember-route"].startswith("cloud/gpt-x;")
    assert completion.model == "smart"
    assert completion.choices[0].message.content.startswith("echo:Say hi")
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert cloud.received[-1]["model"] == "gpt-x"
    assert cloud.received[-1]["max_tokens"] == 16

    stream = shared_client(gateway).chat.completions.create(
        model="smart",
        messages=[{"role": "user", "content": "Stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("echo:Stream please w0 w1")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 9
    assert cloud.received[-1]["stream"] is True


def test_a_request_with_pii_never_reaches_the_remote(
    gateway: RunningServer, cloud: FakeProvider
) -> None:
    raw = ask(gateway, "smart", PII)
    assert raw.headers["x-ember-route"].startswith(f"local/{SMALL_MODEL};")
    assert "sensitive" in raw.headers["x-ember-route"]
    stream = shared_client(gateway).chat.completions.create(
        model="smart", messages=[{"role": "user", "content": PII}], max_tokens=8, stream=True
    )
    assert list(stream)
    with pytest.raises(openai.BadRequestError) as refused:
        ask(gateway, "remote-only", PII)
    assert refused.value.code == "content_policy_violation"
    assert not any("ada.lovelace" in text for text in cloud.texts())
    assert cloud.received == []


def test_a_name_found_only_by_the_nlp_pass_keeps_the_request_local(
    gateway: RunningServer, cloud: FakeProvider
) -> None:
    # Under the default `allow` policy the guard runs its NLP recognizers beside generation;
    # routing still waits for them before it may choose a remote target.
    for text in ("Please write a short note to Margaret Hamilton.", "请给张伟写一封感谢信。"):
        raw = ask(gateway, "smart", text)
        assert raw.headers["x-ember-route"].startswith(f"local/{SMALL_MODEL};"), text
    assert cloud.received == []


def test_failover_to_the_next_target_on_5xx(
    gateway: RunningServer, cloud: FakeProvider, backup: FakeProvider
) -> None:
    cloud.script("500", "500")
    raw = ask(gateway, "failover")
    assert raw.headers["x-ember-route"].startswith("backup/gpt-f1;")
    assert len(cloud.received) == 2  # one retry, then the next target
    assert len(backup.received) == 1


def test_retry_after_is_honoured(gateway: RunningServer, cloud: FakeProvider) -> None:
    cloud.script(("429", 0.4))
    started = time.monotonic()
    raw = ask(gateway, "patient")
    assert time.monotonic() - started >= 0.4
    assert raw.headers["x-ember-route"].startswith("cloud/gpt-p;")
    assert len(cloud.received) == 2


def test_rate_limited_everywhere_is_a_429(gateway: RunningServer, cloud: FakeProvider) -> None:
    cloud.script(("429", 30), ("429", 30))
    with pytest.raises(openai.RateLimitError) as limited:
        ask(gateway, "patient")
    assert limited.value.code == "rate_limit_exceeded"
    assert len(cloud.received) == 1  # a Retry-After too long to wait for is not waited for


def test_timeouts_fail_over(
    gateway: RunningServer, cloud: FakeProvider, backup: FakeProvider
) -> None:
    cloud.script("timeout")
    raw = ask(gateway, "slow")
    assert raw.headers["x-ember-route"].startswith("backup/gpt-t;")


def test_every_target_failing_is_a_502(gateway: RunningServer, cloud: FakeProvider) -> None:
    cloud.script("500")
    with pytest.raises(openai.APIStatusError) as failed:
        ask(gateway, "doomed")
    assert failed.value.status_code == 502
    assert failed.value.code == "upstream_error"


def test_the_breaker_opens_after_repeated_failures(
    gateway: RunningServer, cloud: FakeProvider, backup: FakeProvider
) -> None:
    cloud.default = "500"
    for _ in range(3):
        assert ask(gateway, "fragile").headers["x-ember-route"].startswith("backup/gpt-b;")
    assert len(cloud.received) == 3
    raw = ask(gateway, "fragile")
    assert raw.headers["x-ember-route"].startswith("backup/gpt-b;")
    assert "breaker open" in raw.headers["x-ember-route"]
    assert len(cloud.received) == 3  # the open breaker kept the request away


def test_streams_fail_over_before_the_first_token(
    gateway: RunningServer, cloud: FakeProvider, backup: FakeProvider
) -> None:
    cloud.script("malformed")
    raw = shared_client(gateway).chat.completions.with_raw_response.create(
        model="streamy", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    assert raw.headers["x-ember-route"].startswith("backup/gpt-s;")
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text.startswith("echo:Hi")


def test_a_stream_failing_after_the_first_token_ends_with_an_error_event(
    gateway: RunningServer, cloud: FakeProvider, backup: FakeProvider
) -> None:
    cloud.script("disconnect")
    stream = shared_client(gateway).chat.completions.create(
        model="streamy", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    got = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got).startswith("echo:Hi w0")
    assert "after the answer had started" in str(failed.value)
    assert backup.received == []  # no failover once the answer has started


def test_cost_ceilings_skip_pricey_targets(
    gateway: RunningServer, cloud: FakeProvider, backup: FakeProvider
) -> None:
    raw = ask(gateway, "cheap")
    assert raw.headers["x-ember-route"] == "backup/gpt-c; reason=cost ceiling"
    assert cloud.received == []


def test_the_responses_api_follows_routes_too(gateway: RunningServer, cloud: FakeProvider) -> None:
    with client_for(gateway) as client:
        response = client.responses.create(model="smart", input="Route me", max_output_tokens=16)
    assert response.output_text.startswith("echo:Route me")
    assert cloud.received[-1]["model"] == "gpt-x"


def test_a_local_target_serves_when_every_remote_one_failed(
    gateway: RunningServer, cloud: FakeProvider
) -> None:
    cloud.script("500")
    raw = ask(gateway, "resilient")
    assert raw.headers["x-ember-route"].startswith(f"local/{SMALL_MODEL};")
    assert "remote failed" in raw.headers["x-ember-route"]
    assert raw.parse().choices[0].message.content
    assert len(cloud.received) == 1


def test_completions_follow_routes(gateway: RunningServer, cloud: FakeProvider) -> None:
    raw = shared_client(gateway).completions.with_raw_response.create(
        model="smart", prompt="Complete me", max_tokens=16
    )
    completion = raw.parse()
    assert raw.headers["x-ember-route"].startswith("cloud/gpt-x;")
    assert completion.object == "text_completion" and completion.model == "smart"
    assert completion.choices[0].text.startswith("echo:Complete me")
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    sent = cloud.received[-1]
    assert sent["model"] == "gpt-x"
    assert sent["messages"] == [{"role": "user", "content": "Complete me"}]
    stream = shared_client(gateway).completions.create(
        model="smart", prompt="Stream me", max_tokens=16, stream=True
    )
    assert "".join(c.choices[0].text for c in stream if c.choices).startswith("echo:Stream me")
    with pytest.raises(openai.BadRequestError) as refused:  # PII: local only; none serves
        shared_client(gateway).completions.create(model="remote-only", prompt=PII)
    assert refused.value.code == "content_policy_violation"
    assert not any("ada.lovelace" in text for text in cloud.texts())


def test_response_format_and_logprobs_pass_through_to_a_remote_target(
    gateway: RunningServer, cloud: FakeProvider
) -> None:
    raw = ask(
        gateway,
        "smart",
        "Answer in JSON",
        logprobs=True,
        top_logprobs=2,
        response_format={"type": "json_object"},
    )
    assert raw.headers["x-ember-route"].startswith("cloud/gpt-x;")
    sent = cloud.received[-1]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    choice = raw.parse().choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    assert [t.logprob for t in choice.logprobs.content[0].top_logprobs] == [-1.0, -2.0]


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_tool_calls_pass_through_a_remote_target_streamed_and_not(
    gateway: RunningServer, cloud: FakeProvider
) -> None:
    client = shared_client(gateway)
    question = [{"role": "user", "content": "Oslo weather"}]
    raw = client.chat.completions.with_raw_response.create(
        model="smart",
        messages=question,
        tools=[WEATHER],
        tool_choice="required",  # type: ignore[list-item]
    )
    assert raw.headers["x-ember-route"].startswith("cloud/gpt-x;")
    sent = cloud.received[-1]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == "required"
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Oslo weather"}  # type: ignore[union-attr]

    # The tool's result goes back to the provider with the call it answers.
    follow_up = client.chat.completions.create(
        model="smart",
        messages=[
            *question,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "12 degrees"},
        ],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert follow_up.choices[0].message.content.startswith("echo:12 degrees")  # type: ignore[union-attr]
    roles = [m["role"] for m in cloud.received[-1]["messages"]]
    assert roles == ["user", "assistant", "tool"]
    assert cloud.received[-1]["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"

    stream = client.chat.completions.create(
        model="smart",
        messages=question,
        tools=[WEATHER],
        stream=True,  # type: ignore[list-item]
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            name += (delta.function and delta.function.name) or ""
            arguments += (delta.function and delta.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather" and json.loads(arguments) == {"city": "Oslo weather"}
    assert finish == "tool_calls"
