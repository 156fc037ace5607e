"""/v1/responses through the real server, driven by the official openai client.

Generations are kept short (``max_output_tokens`` near the minimum of 16) and greedy, so the
suite stays quick on a two-core machine. A failure in the middle of a stream cannot be caused
from outside, so that one case drives ``response_stream`` directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import openai
import pytest
from openai.types.responses import ResponseErrorEvent, ResponseStreamEvent
from pydantic import TypeAdapter

from ember.api.responses.serving import response_stream
from ember.errors import EngineError
from ember.services.responses import ResponseEvent, ResponseService, ResponseStarted

MODEL = "gpt-4o-mini"
SHORT: dict[str, Any] = {"model": MODEL, "max_output_tokens": 16, "temperature": 0}

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}

YES_NO_FORMAT = {
    "type": "json_schema",
    "name": "verdict",
    "schema": {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
        "required": ["answer"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_text_input(client: openai.OpenAI) -> None:
    response = client.responses.create(input="Say hello.", **SHORT)

    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status in ("completed", "incomplete")
    assert response.model == "smollm2-135m-instruct"
    [message] = response.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    [part] = message.content
    assert part.type == "output_text"
    assert part.annotations == []
    assert response.output_text == part.text != ""
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens > 0 and 0 < usage.output_tokens <= 16
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_item_input_with_instructions(client: openai.OpenAI) -> None:
    items: Any = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi!"}]}
    ]
    # Longer than the default system prompt the model's template adds when there is none.
    instructions = "You are a pirate on a ship at sea. Answer every question like one. " * 4
    plain = client.responses.create(input=items, **SHORT)
    instructed = client.responses.create(input=items, instructions=instructions, **SHORT)

    assert instructed.instructions == instructions
    assert plain.instructions is None
    assert instructed.usage and plain.usage
    assert instructed.usage.input_tokens > plain.usage.input_tokens + 40  # in the prompt
    assert instructed.output_text


def test_stream_events_in_order(client: openai.OpenAI) -> None:
    events = list(client.responses.create(input="Count to three.", stream=True, **SHORT))
    types = [event.type for event in events]

    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed" if types[-1] == "response.completed" else "response.incomplete",
    ]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert [event.sequence_number for event in events] == list(range(len(events)))
    adapter = TypeAdapter(ResponseStreamEvent)
    for event in events:
        adapter.validate_python(event.to_dict())

    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    final = events[-1]
    assert final.type in ("response.completed", "response.incomplete")
    assert deltas == done.text == final.response.output_text != ""
    assert events[0].response.id == final.response.id
    assert events[0].response.status == "in_progress"


def test_stream_frames_name_their_event(client: openai.OpenAI) -> None:
    with client.responses.with_streaming_response.create(input="Hi", stream=True, **SHORT) as raw:
        lines = [line for line in raw.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    payloads = [
        json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")
    ]
    assert names == [payload["type"] for payload in payloads]


def test_stream_helper_returns_the_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=MODEL, input="Is water wet?", text={"format": YES_NO_FORMAT}, temperature=0
    ) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()

    assert final.status == "completed"
    assert final.output_text == text
    assert json.loads(text)["answer"] in ("yes", "no")


def test_previous_response_continues_the_conversation(client: openai.OpenAI) -> None:
    first = client.responses.create(input="My name is Zork.", instructions="Be brief.", **SHORT)
    second = client.responses.create(
        previous_response_id=first.id, input="What is my name?", **SHORT
    )

    assert second.previous_response_id == first.id
    assert second.instructions is None  # instructions are not carried over
    assert first.usage and second.usage
    assert second.usage.input_tokens > first.usage.input_tokens
    items = list(client.responses.input_items.list(second.id, order="asc"))
    assert [(item.type, getattr(item, "role", None)) for item in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert items[1].id == first.output[0].id
    assert [part.text for part in items[2].content] == ["What is my name?"]  # type: ignore[union-attr]

    newest_first = client.responses.input_items.list(second.id, limit=1)
    assert [item.id for item in newest_first.data] == [items[2].id]
    assert newest_first.has_more
    after = client.responses.input_items.list(second.id, limit=2, after=items[2].id)
    assert [item.id for item in after.data] == [items[1].id, items[0].id]


def test_retrieve_and_delete(client: openai.OpenAI) -> None:
    created = client.responses.create(input="Hi", metadata={"case": "retrieve"}, **SHORT)

    fetched = client.responses.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()
    assert fetched.metadata == {"case": "retrieve"}

    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    created = client.responses.create(input="Hi", store=False, **SHORT)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_function_call_then_its_output(client: openai.OpenAI) -> None:
    call_turn = client.responses.create(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=64,
        temperature=0,
    )

    [call] = call_turn.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert call.id and call.id.startswith("fc_")
    assert call.call_id.startswith("call_")
    assert call.status == "completed"
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    assert call_turn.tools[0].type == "function"

    answer = client.responses.create(
        previous_response_id=call_turn.id,
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'}
        ],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        **SHORT,
    )
    assert answer.status in ("completed", "incomplete")
    assert answer.output
    items = list(client.responses.input_items.list(answer.id, order="asc"))
    assert [item.type for item in items] == ["message", "function_call", "function_call_output"]


def test_json_schema_text_format(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="Is the sky blue?", text={"format": YES_NO_FORMAT}, temperature=0
    )
    assert response.status == "completed"
    assert json.loads(response.output_text)["answer"] in ("yes", "no")
    assert response.text and response.text.format.type == "json_schema"


def test_max_output_tokens_makes_it_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(
        input="Write a long story about a dragon who learns to fly.", **SHORT
    )
    assert response.status == "incomplete"
    assert response.incomplete_details and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage and response.usage.output_tokens == 16
    assert response.output[0].status == "incomplete"


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"input": "Hi", "previous_response_id": "resp_unknown"}, "previous_response_id"),
        ({"input": "Hi", "model": "no-such-model", "stream": True}, "model"),
    ],
)
def test_not_found(client: openai.OpenAI, request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(**{"model": MODEL, **request_body})
    assert caught.value.param == param


EQ = {"type": "eq", "key": "lang", "value": "en"}


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        # file_search with other tools is a tool of the agent loop (tests/test_agent_mcp.py);
        # its attribute filters apply only to a grounded answer (file_search alone).
        (
            {
                "tools": [
                    WEATHER_TOOL,
                    {"type": "file_search", "vector_store_ids": ["vs_1"], "filters": EQ},
                ]
            },
            "tools[1].filters",
        ),
        ({"tools": [WEATHER_TOOL, {"type": "code_interpreter"}]}, "tools[1].type"),
        ({"background": True, "stream": True}, "stream"),  # background: tests/test_background_*
        (
            {"tools": [{"type": "mcp", "server_label": "x", "connector_id": "c"}]},
            "tools[0].connector_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input[0].content[0].type",
        ),
    ],
)
def test_unsupported_is_refused_by_name(
    client: openai.OpenAI, request_body: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(**{"model": MODEL, "input": "Hi", **request_body})
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == param


class _FailingService(ResponseService):
    """Starts a response, then fails the way an engine failure mid-stream does."""

    def __init__(self) -> None:  # needs no text service or store to fail
        pass

    async def run(self, prepared: Any) -> AsyncIterator[ResponseEvent]:
        yield ResponseStarted({"id": "resp_1", "object": "response", "status": "in_progress"})
        raise EngineError("The engine stopped.")


def test_failure_after_the_stream_started_is_an_error_event() -> None:
    async def frames() -> list[str]:
        return [frame async for frame in response_stream(_FailingService(), cast(Any, None))]

    *started, last = asyncio.run(frames())
    assert [f.split("\n")[0] for f in started] == [
        "event: response.created",
        "event: response.in_progress",
    ]
    name, data = last.strip().split("\n")
    assert name == "event: error"
    error = ResponseErrorEvent.model_validate_json(data.removeprefix("data: "))
    assert (error.code, error.message, error.sequence_number) == (
        "engine_error",
        "The engine stopped.",
        2,
    )
