"""A third-party Ember plugin for the tests: an engine, a PII recognizer and a tool.

``ember_test_plugin-0.1.dist-info`` beside this module declares it as the ``ember.plugins``
entry point ``test``, so putting this folder on ``PYTHONPATH`` is installing it: nothing in
Ember names it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from ember.act.tools import ToolContext, register_tool
from ember.core.types import GenerationChunk, OutputConstraint, SamplingParams
from ember.engines.base import register_engine
from ember.engines.fake import FakeEngine, scripted_reply
from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register


class PluggedEngine(FakeEngine):
    """The fake engine with another reply: ``Plugged in: <the last user message>``."""

    def generate(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationChunk]:
        said = scripted_reply(bytes(prompt_tokens).decode(errors="replace"))
        reply = "Plugged in: " + said.removeprefix("You said: ")
        return self._stream(reply.encode(), self.output_budget(prompt_tokens, params), cancel)


@register_engine("plugged-echo")
def load_plugged_engine(spec: Any, settings: Any) -> PluggedEngine:
    del settings
    return PluggedEngine(spec)


@register
class EmployeeNumberRecognizer(Recognizer):
    """EMPLOYEE_NUMBER: this company's employee numbers, ``EMP-`` and six digits."""

    name = "employee_number"
    entity_type = "EMPLOYEE_NUMBER"
    patterns = (Pattern("emp", r"(?<![\w-])EMP-\d{6}(?![\w-])", 0.8),)
    context = ("employee", "staff", "工号", "员工")


class ShoutTool:
    """Returns its ``text`` argument in capitals."""

    name = "shout"
    description = "Repeat a text in capital letters."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        return str(arguments["text"]).upper()


register_tool(ShoutTool())
