"""A client nobody here wrote: the OpenAI Agents SDK (``openai-agents``) with Ember as its
model provider, over the Responses API (``OpenAIResponsesModel``), runs agents to completion
with the default model (Qwen2.5-Coder-0.5B): one with a function tool the SDK runs, one with
a hosted MCP tool Ember runs (tests/mcp_server.py over stdio, ``local`` in ``ember.toml``).

The model's words are sampled, so the tests force the tool (``tool_choice``), sample at
temperature 0, and assert what does not depend on the sampled text: the tool was called with
arguments that validate, the items the SDK parsed, and that the run completed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from agents import (
    Agent,
    HostedMCPTool,
    MessageOutputItem,
    Model,
    ModelSettings,
    RunConfig,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
    function_tool,
)
from agents.items import MCPListToolsItem
from agents.model_settings import MCPToolChoice
from agents.models.openai_responses import OpenAIResponsesModel
from agents.result import RunResultBase
from openai import AsyncOpenAI
from openai.types.responses import ResponseFunctionToolCall
from openai.types.responses.response_output_item import McpCall

from tests.conftest import RunningServer, start_server, stop_server
from tests.mcp_servers import http_mcp_server, mcp_toml
from tests.test_agent_mcp import TOP

TEMPERATURES = {"paris": 18, "beijing": 25, "tokyo": 21, "london": 14}
# Nothing outside loopback is reachable: no traces sent to OpenAI.
RUN_CONFIG = RunConfig(tracing_disabled=True)
QUESTION = "What is 17 plus 25? Use the add tool."
T = TypeVar("T")


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with http_mcp_server() as url:
        running = start_server(tmp_path_factory.mktemp("agents-sdk-home"), mcp_toml(url, top=TOP))
        yield running
        stop_server(running)


def _run(server: RunningServer, body: Callable[[Model], Awaitable[T]]) -> T:
    """``body`` run with Ember as the SDK's model provider: a Responses model on a client of
    its own, pointed at ``server`` and closed afterwards."""

    async def run() -> T:
        async with AsyncOpenAI(
            base_url=server.v1, api_key="not-needed", max_retries=0, timeout=300
        ) as client:
            model = OpenAIResponsesModel(model="default", openai_client=client)
            return await asyncio.wait_for(body(model), timeout=600)

    return asyncio.run(run())


def _weather_agent(model: Model, calls: list[str], **agent: Any) -> Agent[Any]:
    @function_tool
    def city_temperature(city: str) -> str:
        """The temperature in a city now, in degrees Celsius.

        Args:
            city: The city's name, such as Paris.
        """
        calls.append(city)
        degrees = TEMPERATURES.get(city.strip().lower())
        return "unknown city" if degrees is None else f"{degrees} degrees Celsius"

    return Agent(
        name="weather",
        instructions="You answer questions about the weather. Answer in one short sentence.",
        model=model,
        tools=[city_temperature],
        model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=200),
        **agent,
    )


def _function_calls(result: RunResultBase) -> list[ResponseFunctionToolCall]:
    return [
        item.raw_item
        for item in result.new_items
        if isinstance(item, ToolCallItem) and isinstance(item.raw_item, ResponseFunctionToolCall)
    ]


def test_a_function_tool_is_called_and_its_result_ends_the_run(
    sdk_server: RunningServer,
) -> None:
    calls: list[str] = []
    result = _run(
        sdk_server,
        lambda model: Runner.run(
            _weather_agent(model, calls, tool_use_behavior="stop_on_first_tool"),
            "What is the temperature in Paris?",
            run_config=RUN_CONFIG,
        ),
    )
    # The SDK parsed Ember's function_call, validated its arguments against the tool's schema
    # (it raises on arguments that do not), ran the tool once, and stopped with its result.
    assert len(calls) == 1 and calls[0].strip()
    (call,) = _function_calls(result)
    assert call.name == "city_temperature"
    assert json.loads(call.arguments) == {"city": calls[0]}
    outputs = [item for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    assert len(outputs) == 1 and dict(outputs[0].raw_item)["call_id"] == call.call_id
    assert result.final_output == outputs[0].output
    assert len(result.raw_responses) == 1


def test_an_agent_answers_from_its_tool_result(sdk_server: RunningServer) -> None:
    """The SDK's default loop: the tool is required on the first turn, then ``tool_choice``
    goes back to "auto" and the model must answer from the result rather than call again
    (the decision step, ``ember.core.tool_repeats``)."""
    calls: list[str] = []
    result = _run(
        sdk_server,
        lambda model: Runner.run(
            _weather_agent(model, calls), "What is the temperature in Paris?", run_config=RUN_CONFIG
        ),
    )
    assert len(calls) == 1 and len(_function_calls(result)) == 1
    assert len(result.raw_responses) == 2  # the call, then the answer
    assert isinstance(result.new_items[-1], MessageOutputItem)
    assert "18" in str(result.final_output)


def _mcp_agent(model: Model) -> Agent[Any]:
    mcp = HostedMCPTool(
        tool_config={
            "type": "mcp",
            "server_label": "local",  # tests/mcp_server.py over stdio, in ember.toml
            "allowed_tools": ["add"],
            "require_approval": "never",
        }
    )
    return Agent(
        name="calculator",
        instructions="You add numbers with the add tool. Answer in one short sentence.",
        model=model,
        tools=[mcp],
        model_settings=ModelSettings(
            tool_choice=MCPToolChoice(server_label="local", name="add"),
            temperature=0,
            max_tokens=200,
        ),
    )


def _check_mcp_run(result: RunResultBase) -> None:
    listings = [item for item in result.new_items if isinstance(item, MCPListToolsItem)]
    assert len(listings) == 1 and listings[0].raw_item.server_label == "local"
    assert [tool.name for tool in listings[0].raw_item.tools] == ["add"]
    mcp_calls = [
        item.raw_item
        for item in result.new_items
        if isinstance(item, ToolCallItem) and isinstance(item.raw_item, McpCall)
    ]
    (call,) = mcp_calls
    assert call.server_label == "local" and call.name == "add"
    assert call.error is None and call.status == "completed"
    arguments = json.loads(call.arguments)
    assert call.output == str(arguments["a"] + arguments["b"])  # the MCP server ran it
    # One response (Ember ran the loop), and it ended with the model's answer.
    assert len(result.raw_responses) == 1
    assert isinstance(result.new_items[-1], MessageOutputItem)
    assert isinstance(result.final_output, str)


def test_a_hosted_mcp_tool_runs_in_ember(sdk_server: RunningServer) -> None:
    result = _run(
        sdk_server,
        lambda model: Runner.run(_mcp_agent(model), QUESTION, run_config=RUN_CONFIG),
    )
    _check_mcp_run(result)


def test_a_hosted_mcp_tool_runs_in_ember_streamed(sdk_server: RunningServer) -> None:
    """The same agent through ``Runner.run_streamed``: the SDK reads Ember's SSE events."""

    async def streamed(model: Model) -> tuple[RunResultBase, list[str]]:
        result = Runner.run_streamed(_mcp_agent(model), QUESTION, run_config=RUN_CONFIG)
        kinds: list[str] = [
            event.data.type
            async for event in result.stream_events()
            if event.type == "raw_response_event"
        ]
        return result, kinds

    result, kinds = _run(sdk_server, streamed)
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.mcp_call.completed" in kinds
    _check_mcp_run(result)
