"""Render a conversation into a prompt with the model's own Jinja chat template.

Both engines hand us the template they found (GGUF metadata ``tokenizer.chat_template`` or a
Hugging Face tokenizer's ``chat_template``); rendering it here, once, keeps prompts identical
across engines. Templates that know about tools (Qwen2.5, Llama 3.1, Hermes) get the tools
and tool turns natively; for the others Ember describes the tools in the system message and
turns tool traffic into plain text in the same ``<tool_call>`` format the grammar enforces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ember.core.types import ChatMessage, ToolSpec
from ember.errors import InvalidRequestError

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
# Said in the system message when the model may choose between a call and an answer
# (tool_choice "auto"): small models otherwise call whichever function is offered, even one
# that has nothing to do with the question.
TOOL_CHOICE_HINT = (
    "Call a function only if one of the functions can do what the user asks. If none of "
    "them fits the request, do not call any function: answer the user directly in plain text."
)
# The decision step's second ask, when the model only repeated calls already answered.
ANSWER_HINT = (
    "The function results above hold what the user asked for. Do not call any function "
    "again: answer the user's question in plain text, using those results."
)

# ChatML, used when a model ships no template at all.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)


def _tojson(
    value: Any, indent: int | None = None, separators: Any = None, sort_keys: bool = False
) -> str:
    return json.dumps(
        value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _tool_dict(tool: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def describe_tools(tools: Sequence[ToolSpec]) -> str:
    """System-prompt text for templates without native tool support."""
    lines = [
        "You may call one or more functions to assist with the user query.",
        "Function signatures, one JSON object per line:",
        *(_tojson(_tool_dict(tool)) for tool in tools),
        "To call a function, answer with a JSON object inside tags, one call per block:",
        f'{TOOL_CALL_OPEN}\n{{"name": <function-name>, "arguments": <args-json-object>}}\n'
        f"{TOOL_CALL_CLOSE}",
    ]
    return "\n".join(lines)


def format_tool_call_text(name: str, arguments: str) -> str:
    try:
        args: Any = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        args = arguments
    return f"{TOOL_CALL_OPEN}\n{_tojson({'name': name, 'arguments': args})}\n{TOOL_CALL_CLOSE}"


class ChatTemplate:
    """A compiled chat template plus the special tokens it refers to."""

    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        env.filters["tojson"] = _tojson
        self.source = source or CHATML_TEMPLATE
        self._template = env.from_string(self.source)
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.supports_tools = "tools" in self.source

    def __reduce__(self) -> tuple[Any, ...]:
        # The compiled template does not pickle: rebuild it from its source (engine processes).
        return (_rebuild_template, (self.source, self.bos_token, self.eos_token))

    def render(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        tool_hint: str = "",
        add_generation_prompt: bool = True,
    ) -> str:
        """The prompt text for ``messages``; raises InvalidRequestError if the template does.

        ``tool_hint`` is added to the system message, after any of the caller's.
        """
        native_tools = bool(tools) and self.supports_tools
        wire = [self._message_dict(m, native_tools) for m in messages]
        if tools and not native_tools:
            wire = _prepend_system(wire, describe_tools(tools))
        if tool_hint:
            wire = _prepend_system(wire, tool_hint)
        context: dict[str, Any] = {
            "messages": wire,
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        if native_tools:
            context["tools"] = [_tool_dict(tool) for tool in tools]
        try:
            return self._template.render(**context)
        except jinja2.TemplateError as exc:
            raise InvalidRequestError(
                f"The model's chat template rejected these messages: {exc}", param="messages"
            ) from exc

    def _message_dict(self, message: ChatMessage, native_tools: bool) -> dict[str, Any]:
        role = "system" if message.role == "developer" else message.role
        content = message.content or ""
        if message.role == "assistant" and message.tool_calls:
            if native_tools or self.supports_tools:
                return {
                    "role": "assistant",
                    "content": content,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": _loads(call.arguments)},
                        }
                        for call in message.tool_calls
                    ],
                }
            blocks = [format_tool_call_text(c.name, c.arguments) for c in message.tool_calls]
            return {"role": "assistant", "content": "\n".join([content, *blocks]).strip()}
        if message.role == "tool":
            if native_tools or self.supports_tools:
                result: dict[str, Any] = {"role": "tool", "content": content}
                if message.tool_call_id:
                    result["tool_call_id"] = message.tool_call_id
                return result
            return {"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"}
        return {"role": role, "content": content}


def _loads(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return arguments


def _prepend_system(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{text}" if first["content"] else text
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _rebuild_template(source: str, bos_token: str, eos_token: str) -> ChatTemplate:
    return ChatTemplate(source, bos_token=bos_token, eos_token=eos_token)
