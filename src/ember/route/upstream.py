"""The wire of a remote OpenAI-compatible provider: Ember's domain types to its request JSON,
and its reply JSON (logprobs, tool calls, finish reasons) back to Ember's types.

Pure functions, so ``ember.route.remote`` stays the retry and failover logic and
``ember.route.provider`` the HTTP client.
"""

from __future__ import annotations

import json
from typing import Any

from ember.core.tool_calls import new_tool_call_id
from ember.core.types import (
    ChatMessage,
    FinishReason,
    OutputConstraint,
    SamplingParams,
    TokenLogprob,
    ToolCall,
    ToolSpec,
    TopLogprob,
)
from ember.route.provider import UpstreamError

_FINISH: set[str] = {"stop", "length", "tool_calls", "content_filter"}


def message_dict(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:
        out["name"] = message.name
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def upstream_payload(
    model: str,
    messages: list[ChatMessage],
    params: SamplingParams,
    response_format: OutputConstraint | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "messages": [message_dict(m) for m in messages],
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.max_tokens is not None:
        payload["max_tokens"] = params.max_tokens
    if params.stop:
        payload["stop"] = list(params.stop)
    if params.seed is not None:
        payload["seed"] = params.seed
    if params.presence_penalty:
        payload["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty:
        payload["frequency_penalty"] = params.frequency_penalty
    if params.logit_bias:
        payload["logit_bias"] = {str(token): bias for token, bias in params.logit_bias}
    if params.logprobs:
        payload["logprobs"] = True
        if params.top_logprobs:
            payload["top_logprobs"] = params.top_logprobs
    if response_format is not None and response_format.kind == "json_object":
        payload["response_format"] = {"type": "json_object"}
    elif response_format is not None and response_format.kind == "json_schema":
        schema = {"name": "response", "schema": response_format.schema or {}}
        payload["response_format"] = {"type": "json_schema", "json_schema": schema}
    return payload


def upstream_tools(
    tools: tuple[ToolSpec, ...], tool_choice: str, parallel_tool_calls: bool
) -> dict[str, Any]:
    """The request's functions and tool choice, as the provider's chat API takes them."""
    functions = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        if tool.strict:
            function["strict"] = True
        functions.append({"type": "function", "function": function})
    choice: Any = tool_choice
    if tool_choice not in ("auto", "none", "required"):
        choice = {"type": "function", "function": {"name": tool_choice}}
    out: dict[str, Any] = {"tools": functions, "tool_choice": choice}
    if not parallel_tool_calls:
        out["parallel_tool_calls"] = False
    return out


def upstream_tool_calls(calls: list[dict[str, Any]]) -> tuple[ToolCall, ...]:
    """A provider's tool calls as Ember's (with Ember's ids, the arguments re-serialized as a
    local model's are); a call without a function name is dropped."""
    parsed: list[ToolCall] = []
    for call in calls:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError as exc:
            raise UpstreamError("the provider sent tool call arguments that are not JSON") from exc
        name = function.get("name")
        if not isinstance(name, str):
            continue
        parsed.append(
            ToolCall(
                id=new_tool_call_id(),
                name=name,
                arguments=json.dumps(arguments, ensure_ascii=False),
            )
        )
    return tuple(parsed)


def upstream_logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    """A choice's ``logprobs.content`` from the provider, as the engines report them."""
    content = (choice.get("logprobs") or {}).get("content") or []

    def raw(item: dict[str, Any]) -> tuple[int, ...]:
        found = item.get("bytes")
        return tuple(found) if found else tuple(str(item.get("token", "")).encode())

    return tuple(
        TokenLogprob(
            token=str(item.get("token", "")),
            logprob=float(item.get("logprob", 0.0)),
            bytes=raw(item),
            top=tuple(
                TopLogprob(str(t.get("token", "")), float(t.get("logprob", 0.0)), raw(t))
                for t in item.get("top_logprobs") or []
            ),
        )
        for item in content
        if isinstance(item, dict)
    )


def upstream_finish(value: Any) -> FinishReason:
    """The provider's finish reason, or ``stop`` for one Ember does not know."""
    return value if value in _FINISH else "stop"
