"""Split generated text into assistant content and tool calls, incrementally.

Small models write a call in one of a few forms, and the first non-blank characters say which:

* ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` blocks (the chat
  template's own form), one call per block, each complete when its closing tag arrives;
* a bare ``{"name": ..., "arguments": {...}}`` object, or a ``[...]`` list of them;
* the same object or list in a fenced block (```` ```json ... ``` ````).

Anything else is text, streamed as it arrives. A bare or fenced form becomes tool calls only
when every call in it names a tool of the request and its arguments validate against that
tool's schema (after :func:`~ember.core.tool_arguments.repair_arguments`); otherwise it is
returned as the text it was, so nothing the model wrote is lost. With tools offered, the
grammar (``ember.engines.grammar``) constrains each of these forms, so a call the model starts
is valid by construction; the checks here are for output no grammar shaped (remote models,
engines without grammars).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ember.core.chat_template import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from ember.core.tool_arguments import repair_arguments
from ember.core.types import ToolCall, ToolSpec

FENCE = "```"
# The opening line of a fenced block that may hold a call: ``` or ```json, then a newline.
_FENCE_OPEN = re.compile(r"```(?:json)?[ \t]*\n", re.IGNORECASE)


def new_tool_call_id() -> str:
    return "call_" + secrets.token_hex(12)


@dataclass
class ParsedOutput:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)


class ToolCallParser:
    """Feed text as it streams; get content deltas and completed tool calls back.

    ``tools`` are the request's tools: a call naming another function, or whose arguments do
    not fit, is not a call. With no tools given (a remote model's text) a tagged block or a
    bare object is a call whatever it names, and lists and fenced blocks are text.
    """

    def __init__(self, tools: Sequence[ToolSpec] = ()) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._mode: str | None = None  # None until decided: "text", "calls", "bare", "fenced"
        self._buffer = ""
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        """(content to emit now, tool calls completed by this text)."""
        if self._mode == "text":
            return text, []
        self._buffer += text
        out, calls = "", list[ToolCall]()
        while True:
            if self._mode is None:
                self._mode = _decide(self._buffer.lstrip(), known=bool(self._tools))
                if self._mode is None:
                    return out, calls
            if self._mode == "text":
                out, self._buffer = out + self._buffer, ""
                return out, calls
            if self._mode == "calls":
                return out, calls + self._drain_calls()
            if self._mode == "bare":
                return out, calls  # bare JSON: complete only at the end
            closed, found = self._fenced()
            calls += found
            if not closed:
                return out, calls

    def finish(self) -> tuple[str, list[ToolCall]]:
        """Whatever is left once generation ended."""
        rest, self._buffer = self._buffer, ""
        if self._mode == "calls":
            self._buffer = rest
            calls = self._drain_calls()
            return "", calls
        if self._mode == "bare":
            return self._accept(rest, rest.strip())
        if self._mode == "fenced":
            return self._accept(rest, _fence_body(rest.lstrip()))
        if self._mode is None and not rest.strip():
            return "", []  # the blank line after a fenced call
        return rest, []

    def _drain_calls(self) -> list[ToolCall]:
        completed: list[ToolCall] = []
        while True:
            start = self._buffer.find(TOOL_CALL_OPEN)
            end = self._buffer.find(TOOL_CALL_CLOSE, start + 1)
            if start < 0 or end < 0:
                return completed
            body = self._buffer[start + len(TOOL_CALL_OPEN) : end].strip()
            self._buffer = self._buffer[end + len(TOOL_CALL_CLOSE) :]
            calls = self._calls_in(body)
            self.calls.extend(calls or [])
            completed.extend(calls or [])

    def _fenced(self) -> tuple[bool, list[ToolCall]]:
        """(whether the block closed, its calls); a block that holds none turns into text."""
        stripped = self._buffer.lstrip()
        opening = _FENCE_OPEN.match(stripped)
        if opening is None:
            if "\n" in stripped or len(stripped) > len("```json "):  # ```python: not a call
                self._mode = "text"
                return True, []
            return False, []
        end = stripped.find(FENCE, opening.end())
        if end < 0:
            return False, []
        calls = self._calls_in(stripped[opening.end() : end])
        if not calls:
            self._mode = "text"
            return True, []
        self.calls.extend(calls)
        # Another call, or text, may follow a fenced call: the next characters decide.
        self._buffer, self._mode = stripped[end + len(FENCE) :], None
        return True, calls

    def _accept(self, raw: str, body: str) -> tuple[str, list[ToolCall]]:
        """The calls in ``body``, or ``raw`` back as text when it holds none that fit."""
        calls = self._calls_in(body)
        if not calls:
            return raw, []
        self.calls.extend(calls)
        return "", calls

    def _calls_in(self, body: str) -> list[ToolCall] | None:
        """Every call in a JSON object or list; None if any one is not a call that fits."""
        try:
            value = json.loads(body)
        except json.JSONDecodeError:
            return None
        items = value if isinstance(value, list) else [value]
        calls = [self._call(item) for item in items]
        if not calls or any(call is None for call in calls):
            return None
        return [call for call in calls if call is not None]

    def _call(self, value: Any) -> ToolCall | None:
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            return None
        name = value["name"]
        arguments = value.get("arguments", value.get("parameters", {}))
        if isinstance(arguments, str):  # the arguments as a JSON string, OpenAI-style
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                return None
        if self._tools:
            tool = self._tools.get(name)
            if tool is None:
                return None
            arguments = repair_arguments(arguments, tool.parameters)
        elif not isinstance(arguments, dict):
            return None
        if arguments is None:
            return None
        return ToolCall(
            id=new_tool_call_id(), name=name, arguments=json.dumps(arguments, ensure_ascii=False)
        )


def _decide(stripped: str, *, known: bool) -> str | None:
    """The mode the first non-blank characters choose; None while they cannot tell yet.

    Lists and fenced blocks are calls only when the tools are ``known`` (a local engine's
    request): without them (a remote model's text) they stay text, as they may well be.
    """
    if not stripped:
        return None
    if stripped[0] == "{" or (stripped[0] == "[" and known):
        return "bare"
    if stripped[0] == "<":
        if TOOL_CALL_OPEN.startswith(stripped[: len(TOOL_CALL_OPEN)]):
            return "calls" if len(stripped) >= len(TOOL_CALL_OPEN) else None
        return "text"
    if stripped[0] == "`" and known:
        if FENCE.startswith(stripped[:3]):
            return "fenced" if len(stripped) >= len(FENCE) else None
        return "text"
    return "text"


def _fence_body(block: str) -> str:
    opening = _FENCE_OPEN.match(block)
    if opening is None:
        return ""
    body = block[opening.end() :]
    close = body.find(FENCE)
    return body[:close] if close >= 0 else body


def parse_output(text: str, tools: Sequence[ToolSpec] = ()) -> ParsedOutput:
    """Parse a whole, finished generation."""
    parser = ToolCallParser(tools)
    content, calls = parser.feed(text)
    tail, more = parser.finish()
    return ParsedOutput(content=content + tail, tool_calls=calls + more)
