"""Domain types shared by every layer.

These are not wire models: the API layer's pydantic request models convert themselves into
these, and engines consume only these. They are plain dataclasses so that engines, services
and (later) the guard and router can pass them around without importing FastAPI or pydantic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "cancelled"]


@dataclass(frozen=True)
class ToolCall:
    """A function call the model made; ``arguments`` is a JSON object as text."""

    id: str
    name: str
    arguments: str

    def arguments_dict(self) -> dict[str, Any]:
        value = json.loads(self.arguments)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation, text only."""

    role: Role
    content: str | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call, with its JSON-schema parameters."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens; engines translate these into their own sampler settings."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logprobs: bool = False
    top_logprobs: int = 0
    # (token id, bias added to its logit); a bias of -100 or below bans the token.
    logit_bias: tuple[tuple[int, float], ...] = ()

    def check_logit_bias(self, vocab_size: int) -> None:
        """Refuse token ids the model does not have (400, param ``logit_bias``)."""
        from ember.errors import InvalidRequestError

        unknown = sorted(token for token, _ in self.logit_bias if token >= vocab_size)
        if unknown:
            raise InvalidRequestError(
                f"logit_bias names token ids this model does not have ({unknown[0]}; "
                f"its vocabulary has {vocab_size} tokens).",
                param="logit_bias",
            )


@dataclass(frozen=True)
class OutputConstraint:
    """What the output must look like; engines enforce it with grammar-constrained decoding.

    ``json_object``: any JSON object. ``json_schema``: a JSON value valid against ``schema``.
    ``tool_calls``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks whose
    name and arguments match one of ``tools``; with ``tool_mode="auto"`` the model may
    instead answer in plain text; ``tool_mode="text"`` allows only that text (which may not
    begin the way a call does); ``parallel`` allows more than one call.
    """

    kind: Literal["json_object", "json_schema", "tool_calls"]
    schema: dict[str, Any] | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_mode: Literal["auto", "required", "text"] = "auto"
    parallel: bool = True

    def tool_call_schema(self) -> dict[str, Any]:
        """The JSON schema of one ``{"name", "arguments"}`` call object."""
        options = [
            {
                "type": "object",
                "properties": {
                    "name": {"const": tool.name},
                    "arguments": _closed_object_schema(tool.parameters),
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for tool in self.tools
        ]
        return options[0] if len(options) == 1 else {"anyOf": options}


def _closed_object_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    schema = dict(parameters) if parameters else {"type": "object", "properties": {}}
    schema.setdefault("type", "object")
    return schema


@dataclass(frozen=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...]


@dataclass(frozen=True)
class TokenLogprob:
    """The chosen token's log-probability and, when asked, the most likely alternatives."""

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True)
class GenerationChunk:
    """A piece of generated text. ``finish_reason`` is set on the last chunk only.

    ``tool_calls`` are calls that arrive already structured (a remote provider's), which the
    generation service emits as they are; a local model's calls arrive as text and are parsed.
    """

    text: str = ""
    tokens: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: FinishReason | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
