"""The types a generation is described by, from the request to the events it streams.

:class:`ChatRequest` is a chat request in domain terms (the wire models convert themselves
into it); :class:`PreparedGeneration` is a request the planner checked and gave a source
(a local engine with its tokenized prompt, a remote target, or a cached answer); the
``ChatEvent`` values are what ``TextGenerationService.run`` yields for the API layer to turn
into OpenAI chunks or a whole response.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ember.core.request_context import RequestContext
from ember.core.types import (
    ChatMessage,
    FinishReason,
    GenerationChunk,
    OutputConstraint,
    SamplingParams,
    TokenLogprob,
    ToolCall,
    ToolSpec,
)
from ember.engines.base import TextEngine
from ember.models.spec import ModelSpec

if TYPE_CHECKING:
    from ember.services.generation import EngineStream

ToolChoice = Literal["auto", "none", "required"] | str


@dataclass
class ChatRequest:
    """A chat request in domain terms (the wire model converts itself into this)."""

    model: str
    messages: list[ChatMessage]
    params: SamplingParams = field(default_factory=SamplingParams)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    response_format: OutputConstraint | None = None
    n: int = 1
    stream: bool = False


class ChunkSource(Protocol):
    """Generated text from somewhere other than a local engine: a remote target
    (``ember.route.remote``) or a cached answer (``ember.services.cache_replay``)."""

    def chunks(self, index: int, params: SamplingParams) -> AsyncIterator[GenerationChunk]: ...


@dataclass
class PreparedGeneration:
    """A request that passed every check: the model is loaded and the prompt fits."""

    spec: ModelSpec
    engine: TextEngine | None  # None when a remote target serves it (``remote``)
    ctx: RequestContext
    prompt_tokens: list[int]
    params: SamplingParams
    constraint: OutputConstraint | None = None
    parses_tools: bool = False
    n: int = 1
    created: int = field(default_factory=lambda: int(time.time()))
    remote: ChunkSource | None = None  # a remote target or a cached answer
    # The first choice, already handed to its engine (``TextGenerationService.admit``).
    admitted: EngineStream | None = None


@dataclass(frozen=True)
class ContentDelta:
    index: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ToolCallDelta:
    index: int
    position: int
    call: ToolCall


@dataclass(frozen=True)
class ChoiceEnd:
    index: int
    finish_reason: FinishReason


ChatEvent = ContentDelta | ToolCallDelta | ChoiceEnd
