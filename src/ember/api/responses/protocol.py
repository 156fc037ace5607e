"""Wire models of ``POST /v1/responses`` (requests; responses use the openai types).

Input items, content parts, tools and text formats are unions with a catch-all member,
picked by their ``type``: a known type is validated strictly, an unknown one parses and is
refused with an ``UnsupportedParameterError`` naming where it was, instead of a bare
validation error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator

from ember.api.ember_extension import EmberOptions, FileSearchTool
from ember.api.responses.mcp import (
    McpApprovalRequestInput,
    McpApprovalResponseInput,
    McpCallInput,
    McpListToolsInput,
    McpTool,
)
from ember.api.wire import WireModel
from ember.core.types import OutputConstraint, SamplingParams, ToolSpec
from ember.errors import InvalidRequestError, UnsupportedParameterError
from ember.services.agent import FileSearchRequest, McpToolRequest
from ember.services.responses import (
    Item,
    ResponseRequest,
    function_call_item,
    function_call_output_item,
    message_item,
)


def _tagged(union: str, known: tuple[str, ...], default: str | None = None) -> Discriminator:
    """Discriminate on ``type``: a known value picks its member, anything else 'other'.

    Tags read ``<union>-<type>``: the error mapper drops loc parts with a dash (union
    member names), so a validation error names ``input[0].call_id``, not the tag.
    """

    def tag(value: Any) -> str:
        kind = (
            value.get("type", default) if isinstance(value, dict) else getattr(value, "type", None)
        )
        return f"{union}-{kind if kind in known else 'other'}"

    return Discriminator(tag)


class _Other(WireModel):
    model_config = ConfigDict(extra="allow")
    type: str | None = None


class TextPart(WireModel):
    model_config = ConfigDict(extra="ignore")  # output_text carries annotations, logprobs
    type: Literal["input_text", "output_text"]
    text: str


class RefusalPart(WireModel):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    Annotated[TextPart, Tag("part-input_text")]
    | Annotated[TextPart, Tag("part-output_text")]
    | Annotated[RefusalPart, Tag("part-refusal")]
    | Annotated[_Other, Tag("part-other")],
    _tagged("part", ("input_text", "output_text", "refusal")),
]


def content_texts(content: list[ContentPart] | str, *, param: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for index, part in enumerate(content):
        if isinstance(part, _Other):
            raise UnsupportedParameterError(
                f"Content parts of type '{part.type}' are not supported by local text models.",
                param=f"{param}[{index}].type",
            )
        texts.append(part.text if isinstance(part, TextPart) else part.refusal)
    return texts


class MessageInput(WireModel):
    """An input message; ``type`` may be left out (OpenAI's EasyInputMessage)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["message"] = "message"
    id: str | None = None
    role: Literal["user", "system", "developer", "assistant"]
    content: list[ContentPart] | str

    def to_item(self, index: int) -> Item:
        texts = content_texts(self.content, param=f"input[{index}].content")
        return message_item(self.role, texts, item_id=self.id)


class FunctionCallInput(WireModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function_call"]
    id: str | None = None
    call_id: str
    name: str
    arguments: str

    def to_item(self, index: int) -> Item:
        return function_call_item(self.call_id, self.name, self.arguments, item_id=self.id)


class FunctionCallOutputInput(WireModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str
    output: list[ContentPart] | str

    def to_item(self, index: int) -> Item:
        texts = content_texts(self.output, param=f"input[{index}].output")
        return function_call_output_item(self.call_id, "".join(texts), item_id=self.id)


InputItem = Annotated[
    Annotated[MessageInput, Tag("item-message")]
    | Annotated[FunctionCallInput, Tag("item-function_call")]
    | Annotated[FunctionCallOutputInput, Tag("item-function_call_output")]
    | Annotated[McpApprovalResponseInput, Tag("item-mcp_approval_response")]
    | Annotated[McpCallInput, Tag("item-mcp_call")]
    | Annotated[McpListToolsInput, Tag("item-mcp_list_tools")]
    | Annotated[McpApprovalRequestInput, Tag("item-mcp_approval_request")]
    | Annotated[_Other, Tag("item-other")],
    _tagged(
        "item",
        (
            "message",
            "function_call",
            "function_call_output",
            "mcp_approval_response",
            "mcp_call",
            "mcp_list_tools",
            "mcp_approval_request",
        ),
        default="message",
    ),
]


class FunctionTool(WireModel):
    """A function tool in the Responses shape (flat, not nested under ``function``)."""

    type: Literal["function"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    def to_domain(self) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=self.parameters or {"type": "object", "properties": {}},
            strict=self.strict is not False,
        )


Tool = Annotated[
    Annotated[FunctionTool, Tag("tool-function")]
    | Annotated[FileSearchTool, Tag("tool-file_search")]
    | Annotated[McpTool, Tag("tool-mcp")]
    | Annotated[_Other, Tag("tool-other")],
    _tagged("tool", ("function", "file_search", "mcp")),
]


class ToolChoiceObject(WireModel):
    model_config = ConfigDict(extra="allow")
    type: str
    name: str | None = None
    server_label: str | None = None


class FormatText(WireModel):
    type: Literal["text"]


class FormatJsonObject(WireModel):
    type: Literal["json_object"]


class FormatJsonSchema(WireModel):
    type: Literal["json_schema"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


TextFormat = Annotated[
    Annotated[FormatText, Tag("format-text")]
    | Annotated[FormatJsonObject, Tag("format-json_object")]
    | Annotated[FormatJsonSchema, Tag("format-json_schema")]
    | Annotated[_Other, Tag("format-other")],
    _tagged("format", ("text", "json_object", "json_schema")),
]


class TextConfig(WireModel):
    model_config = ConfigDict(extra="ignore")  # verbosity: a local model has one
    format: TextFormat = Field(default_factory=lambda: FormatText(type="text"))

    def to_domain(self) -> OutputConstraint | None:
        if isinstance(self.format, _Other):
            raise InvalidRequestError(
                f"text.format of type '{self.format.type}' is unknown; use 'text', "
                "'json_object' or 'json_schema'.",
                param="text.format.type",
            )
        if isinstance(self.format, FormatJsonObject):
            return OutputConstraint(kind="json_object")
        if isinstance(self.format, FormatJsonSchema):
            return OutputConstraint(kind="json_schema", schema=self.format.schema_)
        return None


class ConversationRef(WireModel):
    model_config = ConfigDict(extra="ignore")
    id: str


class CreateResponseRequest(WireModel):
    """The body of ``POST /v1/responses``; fields Ember has no use for are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: list[InputItem] | str | None = None  # list first: its errors are reported first
    instructions: str | None = None
    previous_response_id: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=16)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | ToolChoiceObject | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    stream: bool | None = None
    user: str | None = None
    # Accepted so that they are refused by name rather than silently ignored.
    background: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=0)
    conversation: str | ConversationRef | None = None
    prompt: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    include: list[str] | None = None  # "file_search_call.results"; the others have no data here
    ember: EmberOptions | None = None  # Ember's extensions (ember.api.ember_extension)

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if len(value) > 16:
            raise ValueError("at most 16 metadata keys are allowed")
        if any(len(k) > 64 or len(v) > 512 for k, v in value.items()):
            raise ValueError("metadata keys are at most 64 characters, values at most 512")
        return value

    def _refuse_unsupported(self) -> None:
        refused = {
            "prompt": "Stored prompt templates are not supported.",
        }
        for param, message in refused.items():
            if getattr(self, param):
                raise UnsupportedParameterError(message, param=param)
        if self.background and self.stream:
            raise UnsupportedParameterError(
                "A background response cannot be streamed; poll GET /v1/responses/{id}.",
                param="stream",
            )
        if self.top_logprobs:
            raise UnsupportedParameterError(
                "top_logprobs is not supported on /v1/responses yet.", param="top_logprobs"
            )

    def _items(self) -> list[Item]:
        if self.input is None or self.input == []:
            if self.previous_response_id is None:
                raise InvalidRequestError(
                    "Missing required parameter: 'input'.",
                    param="input",
                    code="missing_required_parameter",
                )
            return []
        if isinstance(self.input, str):
            return [message_item("user", [self.input])]
        items: list[Item] = []
        for index, entry in enumerate(self.input):
            if isinstance(entry, _Other):
                raise UnsupportedParameterError(
                    f"Input items of type '{entry.type}' are not supported.",
                    param=f"input[{index}].type",
                )
            items.append(entry.to_item(index))
        return items

    def file_search(self) -> FileSearchTool | None:
        """The ``file_search`` tool, when the request asks for a grounded answer."""
        tools = self.tools or []
        found = [t for t in tools if isinstance(t, FileSearchTool)]
        if not found or len(found) != len(tools) or self.conversation is not None:
            return None  # with other tools, file_search is one tool of the agent loop
        found[0].check_filters(tools.index(found[0]))
        return found[0]

    def question(self) -> str:
        """The last user message's text: what a grounded answer answers."""
        for item in reversed(self._items()):
            if item["type"] == "message" and item["role"] == "user":
                text = "\n".join(part["text"] for part in item["content"] if part.get("text"))
                if not text.strip():
                    raise InvalidRequestError("The question is empty.", param="input")
                return text
        raise InvalidRequestError("file_search needs a user message in input.", param="input")

    def _tools(self) -> tuple[ToolSpec, ...]:
        specs: list[ToolSpec] = []
        for index, tool in enumerate(self.tools or ()):
            if isinstance(tool, McpTool | FileSearchTool):
                continue  # server-side tools: _server_tools
            if not isinstance(tool, FunctionTool):
                raise UnsupportedParameterError(
                    f"Tools of type '{tool.type}' are not supported; 'function', 'mcp' and "
                    "'file_search' tools are.",
                    param=f"tools[{index}].type",
                )
            specs.append(tool.to_domain())
        return tuple(specs)

    def _server_tools(self) -> tuple[tuple[McpToolRequest, ...], FileSearchRequest | None]:
        mcp: list[McpToolRequest] = []
        file_search: FileSearchRequest | None = None
        for index, tool in enumerate(self.tools or ()):
            if isinstance(tool, McpTool):
                mcp.append(tool.to_domain(index))
            elif isinstance(tool, FileSearchTool):
                if file_search is not None:
                    raise InvalidRequestError("Give one file_search tool.", param=f"tools[{index}]")
                tool.check_filters(index)
                if tool.filters is not None:
                    raise UnsupportedParameterError(
                        "file_search filters are supported only when it is the only tool.",
                        param=f"tools[{index}].filters",
                    )
                file_search = FileSearchRequest(
                    vector_store_ids=tuple(tool.vector_store_ids),
                    max_num_results=tool.max_num_results or 5,
                    echo=tool.echo(),
                )
        return tuple(mcp), file_search

    def _tools_echo(self) -> list[Item]:
        echoed: list[Item] = []
        for tool in self.tools or ():
            if isinstance(tool, FunctionTool):
                spec = tool.to_domain()
                echoed.append(
                    {
                        "type": "function",
                        "name": spec.name,
                        "description": spec.description,
                        "parameters": spec.parameters,
                        "strict": spec.strict,
                    }
                )
            elif isinstance(tool, McpTool | FileSearchTool):
                echoed.append(tool.echo())
        return echoed

    def _tool_choice(self, tools: tuple[ToolSpec, ...], server: bool = False) -> str:
        wire = self.tool_choice
        choice: str = "auto"
        if isinstance(wire, ToolChoiceObject) and wire.type == "mcp":
            if not server:
                raise InvalidRequestError(
                    "tool_choice of type 'mcp' needs an mcp tool.", param="tool_choice"
                )
            if not wire.server_label:
                raise InvalidRequestError(
                    "tool_choice of type 'mcp' needs 'server_label'.",
                    param="tool_choice.server_label",
                )
            return wire.name or "required"
        if isinstance(wire, ToolChoiceObject):
            if wire.type != "function":
                raise UnsupportedParameterError(
                    f"tool_choice of type '{wire.type}' is not supported.", param="tool_choice"
                )
            if not wire.name:
                raise InvalidRequestError(
                    "tool_choice of type 'function' needs 'name'.", param="tool_choice.name"
                )
            choice = wire.name
        elif wire is not None:
            choice = wire
        if choice not in ("auto", "none") and not tools and not server:
            raise InvalidRequestError("tool_choice is set but no tools are.", param="tool_choice")
        return choice

    def to_domain(self) -> ResponseRequest:
        self._refuse_unsupported()
        tools = self._tools()
        mcp_tools, file_search = self._server_tools()
        server = bool(mcp_tools) or file_search is not None
        choice = self._tool_choice(tools, server)
        text = self.text or TextConfig()
        constraint = text.to_domain()
        if (tools or server) and constraint is not None and choice != "none":
            raise UnsupportedParameterError(
                "Using tools and a JSON text.format together is not supported.",
                param="text.format",
            )
        return ResponseRequest(
            model=self.model,
            input=self._items(),
            instructions=self.instructions,
            previous_response_id=self.previous_response_id,
            params=SamplingParams(
                max_tokens=self.max_output_tokens,
                temperature=1.0 if self.temperature is None else self.temperature,
                top_p=1.0 if self.top_p is None else self.top_p,
            ),
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=self.parallel_tool_calls is not False,
            text_format=text.format.model_dump(by_alias=True, exclude_none=True),
            constraint=constraint,
            metadata=dict(self.metadata or {}),
            store=self.store is not False,
            user=self.user,
            mcp_tools=mcp_tools,
            file_search=file_search,
            max_tool_calls=self.max_tool_calls,
            tools_echo=self._tools_echo() if server else None,
            tool_choice_echo=self.tool_choice.model_dump(exclude_none=True)
            if isinstance(self.tool_choice, ToolChoiceObject) and self.tool_choice.type == "mcp"
            else None,
            truncation=self.truncation == "auto",
            background=self.background is True,
            conversation_id=self.conversation
            if isinstance(self.conversation, str) or self.conversation is None
            else self.conversation.id,
        )
