"""Wire models of ``POST /v1/chat/completions`` (requests; responses use the openai types)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from ember.api.ember_extension import EmberOptions
from ember.api.sampling import SamplingFields
from ember.api.wire import WireModel
from ember.core.types import ChatMessage, OutputConstraint, ToolCall, ToolSpec
from ember.errors import InvalidRequestError, UnsupportedParameterError
from ember.services.generation_types import ChatRequest


class TextPart(WireModel):
    type: Literal["text"]
    text: str


class OtherPart(WireModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["image_url", "input_audio", "file", "refusal"]


ContentPart = Annotated[TextPart | OtherPart, Field(discriminator="type")]
Content = str | list[ContentPart]


def content_text(content: Content | None, *, param: str) -> str | None:
    if content is None or isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        if isinstance(part, OtherPart):
            raise UnsupportedParameterError(
                f"Content parts of type '{part.type}' are not supported by local text models.",
                param=param,
            )
        texts.append(part.text)
    return "".join(texts)


class FunctionCallWire(WireModel):
    name: str
    arguments: str


class ToolCallWire(WireModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallWire


class MessageWire(WireModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Content | None = None
    name: str | None = None
    tool_calls: list[ToolCallWire] | None = None
    tool_call_id: str | None = None

    def to_domain(self, index: int) -> ChatMessage:
        param = f"messages[{index}].content"
        text = content_text(self.content, param=param)
        if self.role == "tool" and not self.tool_call_id:
            raise InvalidRequestError(
                "A message with role 'tool' needs 'tool_call_id'.",
                param=f"messages[{index}].tool_call_id",
            )
        if self.role != "assistant" and text is None:
            raise InvalidRequestError(
                f"Messages with role '{self.role}' need 'content'.", param=param
            )
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in self.tool_calls or ()
        )
        return ChatMessage(
            role=self.role,
            content=text,
            name=self.name,
            tool_calls=calls,
            tool_call_id=self.tool_call_id,
        )


class FunctionWire(WireModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolWire(WireModel):
    type: Literal["function"]
    function: FunctionWire

    def to_domain(self) -> ToolSpec:
        return ToolSpec(
            name=self.function.name,
            description=self.function.description,
            parameters=self.function.parameters or {"type": "object", "properties": {}},
            strict=bool(self.function.strict),
        )


class NamedFunction(WireModel):
    name: str


class NamedToolChoice(WireModel):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaWire(WireModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatWire(WireModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaWire | None = None

    def to_domain(self) -> OutputConstraint | None:
        if self.type == "text":
            return None
        if self.type == "json_object":
            return OutputConstraint(kind="json_object")
        if self.json_schema is None:
            raise InvalidRequestError(
                "response_format of type 'json_schema' needs 'json_schema'.",
                param="response_format.json_schema",
            )
        return OutputConstraint(kind="json_schema", schema=self.json_schema.schema_ or {})


class StreamOptions(WireModel):
    include_usage: bool | None = None


class ChatCompletionRequest(SamplingFields):
    model: str
    messages: list[MessageWire] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormatWire | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[ToolWire] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    ember: EmberOptions | None = None  # Ember's extensions (ember.api.ember_extension)

    def grounding_store_ids(self) -> list[str] | None:
        """``ember.vector_store_ids``: answer from these stores, or None (a plain chat)."""
        if self.ember is None or self.ember.vector_store_ids is None:
            return None
        self.ember.check_filters()
        if self.tools:
            raise UnsupportedParameterError(
                "Tools cannot be combined with ember.vector_store_ids.", param="tools"
            )
        return self.ember.vector_store_ids

    def to_domain(self) -> ChatRequest:
        if self.top_logprobs and not self.logprobs:
            raise InvalidRequestError(
                "top_logprobs needs logprobs set to true.", param="top_logprobs"
            )
        if self.tool_choice not in (None, "none") and not self.tools:
            raise InvalidRequestError("tool_choice is set but no tools are.", param="tool_choice")
        choice: str = "auto"
        if isinstance(self.tool_choice, NamedToolChoice):
            choice = self.tool_choice.function.name
        elif self.tool_choice is not None:
            choice = self.tool_choice
        json_output = self.response_format is not None and self.response_format.type != "text"
        if self.tools and json_output and choice != "none":
            raise UnsupportedParameterError(
                "Using tools and a JSON response_format together is not supported.",
                param="response_format",
            )
        max_tokens = self.max_completion_tokens or self.max_tokens
        return ChatRequest(
            model=self.model,
            messages=[m.to_domain(i) for i, m in enumerate(self.messages)],
            params=self.sampling_params(
                max_tokens=max_tokens,
                logprobs=bool(self.logprobs),
                top_logprobs=self.top_logprobs or 0,
            ),
            tools=tuple(t.to_domain() for t in self.tools or ()),
            tool_choice=choice,
            parallel_tool_calls=self.parallel_tool_calls is not False,
            response_format=self.response_format.to_domain() if self.response_format else None,
            n=self.n or 1,
            stream=bool(self.stream),
        )
