"""The fake engine through the real server: the fast lane's view of the whole request path.

No model is loaded: the ``fake`` engine is registered through the engine registry and runs
in its own engine process like any other, so these tests cover the API, streaming, usage,
limits and crash isolation in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import RunningServer, client_for, fake_config, start_server, stop_server

FAKE_CONFIG = fake_config() + '\n[aliases]\ngpt-4o-mini = "echo"\n'


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("fake-home"), FAKE_CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def fake_client(fake_server: RunningServer) -> Iterator[openai.OpenAI]:
    with client_for(fake_server) as client:
        yield client


def test_chat_answers_with_the_scripted_reply(fake_client: openai.OpenAI) -> None:
    reply = fake_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "héllo wörld"}]
    )
    choice = reply.choices[0]
    assert choice.message.content == "You said: héllo wörld"
    assert choice.finish_reason == "stop"
    assert reply.model == "echo"  # the model that answered, as OpenAI names the snapshot
    # One token per UTF-8 byte: "You said: " is 10, "héllo wörld" is 13.
    assert reply.usage is not None and reply.usage.completion_tokens == 23


def test_streamed_chat_joins_to_the_same_text(fake_client: openai.OpenAI) -> None:
    stream = fake_client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "stream me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream me"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(text)


def test_max_tokens_and_stop_strings(fake_client: openai.OpenAI) -> None:
    cut = fake_client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "abcdef"}], max_tokens=5
    )
    assert cut.choices[0].message.content == "You s"
    assert cut.choices[0].finish_reason == "length"
    stopped = fake_client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "one two three"}], stop=["two"]
    )
    assert stopped.choices[0].message.content == "You said: one "
    assert stopped.choices[0].finish_reason == "stop"


def test_completions_echo_the_prompt(fake_client: openai.OpenAI) -> None:
    reply = fake_client.completions.create(model="echo", prompt="plain prompt", max_tokens=50)
    assert reply.choices[0].text == "You said: plain prompt"


def test_a_prompt_over_the_context_is_a_400(fake_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        fake_client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "x" * 600}]
        )
    assert caught.value.body["code"] == "context_length_exceeded"  # type: ignore[index]


def test_a_native_crash_fails_one_request_and_the_engine_restarts(
    fake_server: RunningServer, fake_client: openai.OpenAI
) -> None:
    def engine() -> dict[str, object]:
        listed = httpx.get(f"{fake_server.v1}/ember/models/loaded", timeout=10).json()["data"]
        return next(entry for entry in listed if entry["id"] == "echo")

    fake_client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "a"}])
    before = engine()
    with pytest.raises(openai.APIStatusError) as caught:
        fake_client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "/segfault"}]
        )
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "engine_crashed"  # type: ignore[index]
    assert "SIGSEGV" in caught.value.message
    assert httpx.get(f"{fake_server.base_url}/healthz", timeout=10).status_code == 200
    again = fake_client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "still there?"}]
    )
    assert again.choices[0].message.content == "You said: still there?"
    after = engine()
    assert after["pid"] != before["pid"]
    assert after["restarts"] == before["restarts"] + 1  # type: ignore[operator]
    assert fake_server.process.poll() is None
