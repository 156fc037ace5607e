"""Tool calls the default model means reach the client as tool calls; others are not made.

Through the real server, with the official openai client and the default model (Qwen2.5-Coder
-0.5B, greedy). Asked to, the model writes its call as a fenced ```json block or as a bare
JSON object, the forms that used to reach clients as text; both come back as ``tool_calls``
with arguments that are valid JSON for the tool. A question no tool serves gets text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
AREA: Any = {
    "type": "function",
    "function": {
        "name": "calculate_triangle_area",
        "description": "Calculate the area of a triangle given its base and height.",
        "parameters": {
            "type": "object",
            "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}},
            "required": ["base", "height"],
        },
    },
}


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    server: RunningServer = start_server(
        tmp_path_factory.mktemp("tools-home"), 'preload = ["default"]\nn_threads = 2\n'
    )
    try:
        yield client_for(server)
    finally:
        stop_server(server)


def _ask(client: openai.OpenAI, messages: list[Any], tools: list[Any]) -> Any:
    return client.chat.completions.create(
        model="default",
        messages=messages,
        tools=tools,
        tool_choice="auto",
        temperature=0,
        max_tokens=200,
    ).choices[0]


@pytest.mark.parametrize(
    "form",
    [
        "Write the function call as a JSON object in a ```json code block.",
        'Write only the bare JSON object {"name": ..., "arguments": {...}}, with no tags.',
    ],
    ids=["fenced-json", "bare-object"],
)
def test_a_call_written_as_json_text_comes_back_as_a_tool_call(
    qwen: openai.OpenAI, form: str
) -> None:
    choice = _ask(
        qwen,
        [
            {"role": "system", "content": form},
            {
                "role": "user",
                "content": "What is the area of a triangle with base 10 and height 5?",
            },
        ],
        [WEATHER, AREA],
    )
    assert choice.finish_reason == "tool_calls"
    assert not (choice.message.content or "").strip()
    [call] = choice.message.tool_calls
    assert call.function.name == "calculate_triangle_area"
    assert json.loads(call.function.arguments) == {"base": 10, "height": 5}


def test_a_streamed_fenced_call_arrives_as_tool_call_deltas(qwen: openai.OpenAI) -> None:
    stream = qwen.chat.completions.create(
        model="default",
        messages=[
            {"role": "system", "content": "Write the function call in a ```json code block."},
            {"role": "user", "content": "What's the weather in Paris?"},
        ],
        tools=[WEATHER, AREA],
        tool_choice="auto",
        temperature=0,
        max_tokens=200,
        stream=True,
    )
    content, names, arguments, finish = "", "", "", None
    for chunk in stream:
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for call in delta.tool_calls or []:
            names += call.function.name or "" if call.function else ""
            arguments += call.function.arguments or "" if call.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert not content.strip()
    assert names == "get_weather"
    assert json.loads(arguments)["city"] == "Paris"


@pytest.mark.parametrize(
    "question",
    ["Write a haiku about autumn leaves.", "Who wrote the novel Pride and Prejudice?"],
)
def test_a_question_no_tool_serves_gets_text(qwen: openai.OpenAI, question: str) -> None:
    choice = _ask(qwen, [{"role": "user", "content": question}], [WEATHER, AREA])
    assert choice.message.tool_calls is None
    assert choice.finish_reason in ("stop", "length")
    assert (choice.message.content or "").strip()


def _after_result(question: str, call: str, arguments: str, result: str) -> list[Any]:
    """A turn in which the model called a tool and the client sent back its result."""
    return [
        {"role": "user", "content": question},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": call, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


WEATHER_TURN = _after_result(
    "What's the weather in Paris?",
    "get_weather",
    '{"city": "Paris"}',
    "Sunny, 18 degrees Celsius.",
)


def test_after_a_tool_result_the_model_answers_instead_of_repeating_the_call(
    qwen: openai.OpenAI,
) -> None:
    """Left alone, the default model calls get_weather(Paris) again here, for ever; the
    decision step drops a call already answered in this turn and asks for the answer."""
    choice = _ask(qwen, WEATHER_TURN, [WEATHER, AREA])
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert "18" in (choice.message.content or "")


def test_after_a_tool_result_the_streamed_answer_is_text(qwen: openai.OpenAI) -> None:
    stream = qwen.chat.completions.create(
        model="default",
        messages=WEATHER_TURN,
        tools=[WEATHER, AREA],
        tool_choice="auto",
        temperature=0,
        max_tokens=200,
        stream=True,
        stream_options={"include_usage": True},
    )
    content, calls, finish, usage = "", 0, None, None
    for chunk in stream:
        usage = chunk.usage or usage
        if not chunk.choices:
            continue
        content += chunk.choices[0].delta.content or ""
        calls += len(chunk.choices[0].delta.tool_calls or [])
        finish = chunk.choices[0].finish_reason or finish
    assert calls == 0 and finish == "stop"
    assert "18" in content
    # The dropped call's tokens were generated too, and are counted.
    assert usage is not None and usage.completion_tokens > len(content.split())


def test_tool_choice_none_gets_a_message_not_a_call_written_as_text(
    qwen: openai.OpenAI,
) -> None:
    """Asked for a call in a ```json block but given ``tool_choice: "none"``, the model used
    to write the call as text; "none" means a message, and text may not begin like a call."""
    choice = qwen.chat.completions.create(
        model="default",
        messages=[
            {"role": "system", "content": "Write the function call in a ```json code block."},
            {"role": "user", "content": "What's the weather in Paris?"},
        ],
        tools=[WEATHER, AREA],
        tool_choice="none",
        temperature=0,
        max_tokens=100,
    ).choices[0]
    content = (choice.message.content or "").lstrip()
    assert choice.message.tool_calls is None
    assert content and not content.startswith(("{", "[", "<", "```json"))


def test_the_last_step_after_a_tool_result_under_none_answers_from_it(
    qwen: openai.OpenAI,
) -> None:
    choice = qwen.chat.completions.create(
        model="default",
        messages=WEATHER_TURN,
        tools=[WEATHER, AREA],
        tool_choice="none",
        temperature=0,
        max_tokens=100,
    ).choices[0]
    assert choice.message.tool_calls is None and choice.finish_reason == "stop"
    assert "18" in (choice.message.content or "")
