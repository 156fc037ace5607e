"""An Ember plugin: an engine, a PII recognizer and a tool, registered when imported.

Its package declares the module as an entry point (pyproject.toml)::

    [project.entry-points."ember.plugins"]
    example = "ember_plugin_example"
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from ember.act.tools import ToolContext, register_tool
from ember.core.chat_template import ChatTemplate
from ember.core.types import FinishReason, GenerationChunk, OutputConstraint, SamplingParams
from ember.engines.base import EngineCapabilities, TextEngine, register_engine
from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register


class ReverseEngine(TextEngine):
    """Answers with the prompt's characters in reverse; a token is a UTF-8 byte."""

    capabilities = EngineCapabilities(chat=True, completion=True, streaming=True)

    def __init__(self, context_length: int) -> None:
        super().__init__()
        self._context_length = context_length

    @property
    def memory_bytes(self) -> int:
        return 0

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def chat_template(self) -> ChatTemplate:
        return ChatTemplate(None)  # ChatML

    def tokenize(self, text: str) -> list[int]:
        return list(text.encode())

    def generate(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationChunk]:
        budget = self.output_budget(prompt_tokens, params)
        answer = bytes(prompt_tokens).decode(errors="replace")[::-1].encode()
        reply = answer[:budget]
        finish: FinishReason = "length" if len(answer) > budget else "stop"
        yield GenerationChunk(
            text=reply.decode(errors="ignore"), tokens=len(reply), finish_reason=finish
        )


@register_engine("reverse")
def load_reverse_engine(spec: Any, settings: Any) -> ReverseEngine:
    return ReverseEngine(spec.context_length or 4096)


@register
class UkNinoRecognizer(Recognizer):
    """UK_NINO: National Insurance numbers (two letters, six digits, a letter A-D)."""

    name = "uk_nino"
    entity_type = "UK_NINO"
    languages = frozenset({"en"})
    patterns = (Pattern("nino", r"\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b", 0.5),)
    context = ("national insurance", "nino", "ni number")


class WordCountTool:
    """Counts the words of a text."""

    name = "word_count"
    description = "Count the words in a text."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        return str(len(str(arguments["text"]).split()))


register_tool(WordCountTool())
