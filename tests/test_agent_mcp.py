"""The agent loop of ``/v1/responses`` with the default model (Qwen2.5-Coder-0.5B) and real
MCP servers written with the ``mcp`` SDK (tests/mcp_server.py): ``local`` over stdio
(trusted, local) and ``web`` over Streamable HTTP on loopback (untrusted, remote), driven by
the official ``openai`` client.

The model's arguments are sampled, so a test forces the call with ``tool_choice`` (a named
``mcp`` tool) and asserts what does not depend on the sampled text: which items come out, in
which order, and that a call's output is what the server computes from the arguments the
item shows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ember.store import Store
from tests.conftest import RunningServer, client_for, start_server, stop_server
from tests.mcp_servers import http_mcp_server, mcp_toml

TOP = """
preload = ["default"]
n_threads = 2
context_length = 4096
"""


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with http_mcp_server() as url:
        running = start_server(tmp_path_factory.mktemp("agent-home"), mcp_toml(url, top=TOP))
        yield running
        stop_server(running)


@pytest.fixture(scope="module")
def client(agent_server: RunningServer) -> Iterator[openai.OpenAI]:
    with client_for(agent_server) as client:
        yield client


def _mcp(label: str, *tools: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": label, "allowed_tools": list(tools), **extra}


def _force(label: str, name: str) -> dict[str, Any]:
    return {"type": "mcp", "server_label": label, "name": name}


def _items(response: Any) -> list[dict[str, Any]]:
    return [item.model_dump() for item in response.output]


def test_a_forced_call_runs_and_the_model_answers_from_its_result(
    client: openai.OpenAI, agent_server: RunningServer
) -> None:
    response = client.responses.create(
        model="default",
        input="What is 17 plus 25? Use the add tool.",
        tools=[_mcp("local", "add")],
        tool_choice=_force("local", "add"),
        max_tool_calls=1,
        max_output_tokens=40,
        temperature=0,
    )
    items = _items(response)
    assert [item["type"] for item in items] == ["mcp_list_tools", "mcp_call", "message"]
    listing, call = items[0], items[1]
    assert listing["server_label"] == "local"
    assert [tool["name"] for tool in listing["tools"]] == ["add"]
    arguments = json.loads(call["arguments"])
    assert call["name"] == "add" and call["error"] is None
    assert call["output"] == str(arguments["a"] + arguments["b"])  # the server computed it
    assert response.status == "completed" and response.max_tool_calls == 1
    assert response.tools[0].type == "mcp"
    # Two model steps (the call, then the answer): usage counts both.
    assert response.usage is not None and response.usage.input_tokens > 2 * 100
    store = Store(agent_server.home / "ember.db")
    try:
        records = [r for r in store.tail_audit(50) if r.endpoint == "tool"]
    finally:
        store.close()
    mine = [r for r in records if json.loads(r.verdicts)["call_id"] == call["id"]]
    assert len(mine) == 1 and mine[0].model == "local/add" and mine[0].status == "ok"
    assert mine[0].request_id == response.id


def test_approval_round_trip_on_an_untrusted_server(client: openai.OpenAI) -> None:
    tools = [_mcp("web", "record")]  # untrusted: require_approval defaults to always
    asked = client.responses.create(
        model="default",
        input="Record the note 'buy milk'.",
        tools=tools,
        tool_choice=_force("web", "record"),
        max_output_tokens=40,
        temperature=0,
    )
    items = _items(asked)
    assert [item["type"] for item in items] == ["mcp_list_tools", "mcp_approval_request"]
    request = items[1]
    assert request["server_label"] == "web" and request["name"] == "record"
    note = json.loads(request["arguments"])["note"]

    approved = client.responses.create(
        model="default",
        previous_response_id=asked.id,
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
        ],
        tools=tools,
        max_tool_calls=1,
        max_output_tokens=40,
        temperature=0,
    )
    items = _items(approved)
    # Listed once per conversation: no second mcp_list_tools; the approved call ran first.
    assert items[0]["type"] == "mcp_call"
    assert items[0]["approval_request_id"] == request["id"]
    assert items[0]["output"].startswith("recorded ") and items[0]["output"].endswith(note)
    assert [item["type"] for item in items[1:]] == ["message"]

    with pytest.raises(openai.BadRequestError) as twice:
        client.responses.create(
            model="default",
            previous_response_id=approved.id,
            input=[
                {
                    "type": "mcp_approval_response",
                    "approval_request_id": request["id"],
                    "approve": True,
                }
            ],
            tools=tools,
        )
    assert twice.value.body["param"] == "input[0].approval_request_id"  # type: ignore[index]


def test_a_declined_call_does_not_run(client: openai.OpenAI) -> None:
    tools = [_mcp("web", "record")]
    asked = client.responses.create(
        model="default",
        input="Record the note 'call mum'.",
        tools=tools,
        tool_choice=_force("web", "record"),
        max_output_tokens=30,
        temperature=0,
    )
    request = _items(asked)[-1]
    assert request["type"] == "mcp_approval_request"
    declined = client.responses.create(
        model="default",
        previous_response_id=asked.id,
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": request["id"],
                "approve": False,
            }
        ],
        tools=tools,
        tool_choice="none",
        max_output_tokens=30,
        temperature=0,
    )
    assert [item["type"] for item in _items(declined)] == ["message"]


def test_failures_are_mcp_call_errors_and_the_server_restarts(client: openai.OpenAI) -> None:
    def forced(name: str) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        response = client.responses.create(
            model="default",
            input="Check the system.",
            tools=[_mcp("local", name)],
            tool_choice=_force("local", name),
            max_tool_calls=1,
            max_output_tokens=60,  # room for a whole call: a cut call is dropped
            temperature=0,
        )
        calls = [item for item in _items(response) if item["type"] == "mcp_call"]
        assert len(calls) == 1
        return calls[0], time.monotonic() - started

    hung, seconds = forced("hang")  # call_timeout_s = 3 in the test config
    assert hung["status"] == "failed" and hung["error"]["code"] == -32001
    assert seconds < 45
    crashed, _ = forced("crash")
    assert crashed["status"] == "failed" and crashed["error"]["type"] == "mcp_protocol_error"
    injected, _ = forced("read_note")
    assert injected["output"] is None and injected["error"]["code"] == -32004
    added, _ = forced("add")  # the crashed process was replaced
    arguments = json.loads(added["arguments"])
    assert added["output"] == str(arguments["a"] + arguments["b"])


def test_max_tool_calls_zero_and_a_function_tool_mixed_in(client: openai.OpenAI) -> None:
    none = client.responses.create(
        model="default",
        input="What is 2 plus 2?",
        tools=[_mcp("local", "add")],
        tool_choice="required",
        max_tool_calls=0,
        max_output_tokens=20,
        temperature=0,
    )
    assert [item["type"] for item in _items(none)] == ["mcp_list_tools", "message"]
    weather = {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    mixed = client.responses.create(
        model="default",
        input="What is the weather in Paris?",
        tools=[_mcp("local", "add"), weather],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=40,
        temperature=0,
    )
    items = _items(mixed)
    assert [item["type"] for item in items] == ["mcp_list_tools", "function_call"]
    assert items[1]["name"] == "get_weather"  # the client's tool: returned, not run


def test_streaming_names_each_mcp_event(client: openai.OpenAI) -> None:
    stream = client.responses.create(
        model="default",
        input="Add 3 and 4.",
        tools=[_mcp("local", "add")],
        tool_choice=_force("local", "add"),
        max_tool_calls=1,
        max_output_tokens=30,
        temperature=0,
        stream=True,
    )
    events = list(stream)
    kinds = [event.type for event in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    assert kinds[: len(expected)] == expected
    final = events[-1].response  # type: ignore[union-attr]
    # The answer after the call may run out of max_output_tokens: completed or incomplete.
    assert kinds[-1] == f"response.{final.status}" and kinds.count(kinds[-1]) == 1
    assert [item.type for item in final.output] == ["mcp_list_tools", "mcp_call", "message"]


def test_a_client_that_keeps_the_history_approves_in_the_same_input(
    client: openai.OpenAI,
) -> None:
    asked = {
        "type": "mcp_approval_request",
        "id": "mcpr_client_kept",
        "server_label": "web",
        "name": "add",
        "arguments": '{"a": 5, "b": 6}',
    }
    response = client.responses.create(
        model="default",
        input=[
            {"role": "user", "content": "Add 5 and 6."},
            asked,
            {"type": "mcp_approval_response", "approval_request_id": asked["id"], "approve": True},
        ],
        tools=[_mcp("web", "add")],
        max_tool_calls=1,
        max_output_tokens=30,
        temperature=0,
    )
    items = _items(response)
    assert [item["type"] for item in items] == ["mcp_list_tools", "mcp_call", "message"]
    assert items[1]["output"] == "11" and items[1]["approval_request_id"] == asked["id"]
