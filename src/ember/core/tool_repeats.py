"""Tool calls the model already made in this turn and got an answer for.

A small model that sees a tool's result under ``tool_choice: "auto"`` often calls the same
tool with the same arguments again instead of answering: a client that runs the calls (the
OpenAI Agents SDK, Ember's own loop) then spins until its turn limit. The decision step in
``ember.services.text_generation`` drops such a repeat and asks the model for its answer in
text instead.

A call counts as answered when, since the user's last message, an assistant turn made the
same call (see :func:`is_repeat`) and a tool message answered it.
Calls from earlier turns are not counted: "check again" from the user is a new question.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ember.core.types import ChatMessage, ToolCall


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return {"": call.arguments}
    return value if isinstance(value, dict) else {"": value}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


def answered_calls(messages: Sequence[ChatMessage]) -> tuple[ToolCall, ...]:
    """The calls made since the last user message whose result is in ``messages``."""
    start = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1) + 1
    turn = messages[start:]
    results = {m.tool_call_id for m in turn if m.role == "tool" and m.tool_call_id}
    return tuple(
        call
        for message in turn
        if message.role == "assistant"
        for call in message.tool_calls
        if call.id in results
    )


def is_repeat(call: ToolCall, answered: Sequence[ToolCall]) -> bool:
    """``call`` asks what one of ``answered`` asked: the same function, and the same value
    (strings compared without case or edge spaces) for every argument both give. A repeat
    often only adds an optional argument ("unit": "celsius") the first call left out."""
    arguments = _arguments(call)
    for earlier in answered:
        if earlier.name != call.name:
            continue
        before = _arguments(earlier)
        if all(_same(arguments[key], before[key]) for key in arguments.keys() & before.keys()):
            return True
    return False
