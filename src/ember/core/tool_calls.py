"""Split generated text into assistant content and ``<tool_call>`` blocks, incrementally.

The grammar (``ember.engines.grammar``) guarantees that, when tools are offered, the output is
plain text that starts with neither ``<`` nor ``{``; or one or more
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` blocks; or one bare
``{"name": ..., "arguments": {...}}`` object. So the first non-blank character decides the
mode, and each call is complete, valid JSON when its closing tag (or the end) arrives.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from ember.core.chat_template import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from ember.core.types import ToolCall


def new_tool_call_id() -> str:
    return "call_" + secrets.token_hex(12)


@dataclass
class ParsedOutput:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)


class ToolCallParser:
    """Feed text as it streams; get content deltas and completed tool calls back."""

    def __init__(self) -> None:
        self._mode: str | None = None  # None until decided: "text", "calls" or "bare"
        self._buffer = ""
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        """(content to emit now, tool calls completed by this text)."""
        if self._mode == "text":
            return text, []
        self._buffer += text
        if self._mode is None:
            stripped = self._buffer.lstrip()
            if not stripped:
                return "", []
            if stripped.startswith("{"):
                self._mode = "bare"
                return "", []
            if not stripped.startswith("<") or not TOOL_CALL_OPEN.startswith(
                stripped[: len(TOOL_CALL_OPEN)]
            ):
                self._mode = "text"
                out, self._buffer = self._buffer, ""
                return out, []
            if len(stripped) < len(TOOL_CALL_OPEN):
                return "", []
            self._mode = "calls"
        if self._mode == "bare":
            return "", []  # one JSON object: complete only at the end
        return "", self._drain_calls()

    def _drain_calls(self) -> list[ToolCall]:
        completed: list[ToolCall] = []
        while True:
            start = self._buffer.find(TOOL_CALL_OPEN)
            end = self._buffer.find(TOOL_CALL_CLOSE, start + 1)
            if start < 0 or end < 0:
                return completed
            body = self._buffer[start + len(TOOL_CALL_OPEN) : end].strip()
            self._buffer = self._buffer[end + len(TOOL_CALL_CLOSE) :]
            call = _parse_call(body)
            if call is not None:
                self.calls.append(call)
                completed.append(call)

    def finish(self) -> tuple[str, list[ToolCall]]:
        """Whatever is left once generation ended."""
        if self._mode == "calls":
            return "", self._drain_calls()
        if self._mode == "bare":
            call, self._buffer = _parse_call(self._buffer.strip()), ""
            if call is not None:
                self.calls.append(call)
                return "", [call]
            return "", []
        out, self._buffer = self._buffer, ""
        return out, []


def _parse_call(body: str) -> ToolCall | None:
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", {})
    return ToolCall(
        id=new_tool_call_id(),
        name=value["name"],
        arguments=json.dumps(arguments, ensure_ascii=False),
    )


def parse_output(text: str) -> ParsedOutput:
    """Parse a whole, finished generation."""
    parser = ToolCallParser()
    content, calls = parser.feed(text)
    tail, more = parser.finish()
    return ParsedOutput(content=content + tail, tool_calls=calls + more)
