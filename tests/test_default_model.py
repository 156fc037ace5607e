"""The default model (Qwen2.5-Coder-0.5B, joined from six packages) in Chinese and English."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server

QWEN = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="module")
def qwen_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    server: RunningServer = start_server(
        tmp_path_factory.mktemp("qwen-home"), 'preload = ["default"]\nn_threads = 2\n'
    )
    try:
        yield client_for(server)
    finally:
        stop_server(server)


def test_default_alias_is_qwen_and_answers_in_english(qwen_client: openai.OpenAI) -> None:
    reply = qwen_client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "What is the capital of France? One word."}],
        max_tokens=10,
        temperature=0,
    )
    assert reply.model == QWEN
    assert "paris" in (reply.choices[0].message.content or "").lower()


def test_answers_in_chinese(qwen_client: openai.OpenAI) -> None:
    reply = qwen_client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "中国的首都是哪里？请用一句话回答。"}],
        max_tokens=30,
        temperature=0,
    )
    assert "北京" in (reply.choices[0].message.content or "")


def test_tool_call_with_the_default_model(qwen_client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    required = qwen_client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "北京今天天气怎么样？"}],
        tools=[tool],  # type: ignore[list-item]
        tool_choice="required",
        max_tokens=60,
        temperature=0,
    )
    calls = required.choices[0].message.tool_calls
    assert required.choices[0].finish_reason == "tool_calls" and calls
    assert "北京" in json.loads(calls[0].function.arguments)["city"]  # type: ignore[union-attr]
    auto = qwen_client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[tool],  # type: ignore[list-item]
        max_tokens=60,
        temperature=0,
    )
    calls = auto.choices[0].message.tool_calls
    assert auto.choices[0].finish_reason == "tool_calls" and calls
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
