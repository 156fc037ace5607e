"""The Responses API use case: conversations as items, continued by ``previous_response_id``.

:class:`ResponseService` turns a :class:`ResponseRequest` (input items, instructions, tools,
text format) into a chat request for :class:`TextGenerationService`, runs it, and turns the
chat events into Responses output items (``message`` with ``output_text``, ``function_call``)
and a ``response`` object checked against the ``openai`` package's ``Response`` type. With
``store`` it saves the response together with the conversation that led to it, so a later
request can continue it (``previous_response_id``) and ``input_items`` can list it.

Items keep their wire shape (JSON dicts, each with an ``id``) because that is what the store
keeps and what ``GET /v1/responses/{id}/input_items`` returns; they become domain
``ChatMessage`` values only to be rendered into a prompt. Instructions are not items: they
apply to one response and are not carried over, as OpenAI documents.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from openai.types.responses import Response

from ember.core.request_context import ANONYMOUS, Caller, RequestContext
from ember.core.types import (
    ChatMessage,
    FinishReason,
    OutputConstraint,
    SamplingParams,
    ToolCall,
    ToolSpec,
)
from ember.errors import (
    ContextLengthExceededError,
    EmberError,
    InvalidRequestError,
    NotFoundError,
)
from ember.guard.aigc import attach, implicit_label
from ember.services.agent import (
    AgentToolbox,
    AgentTools,
    FileSearchRequest,
    McpToolRequest,
    tool_result_text,
)
from ember.services.conversations import item_page
from ember.services.generation_types import (
    ChatRequest,
    ChoiceEnd,
    ContentDelta,
    PreparedGeneration,
    ToolCallDelta,
    ToolChoice,
)
from ember.services.text_generation import TextGenerationService
from ember.store import Store
from ember.store.database import StoredResponse

if TYPE_CHECKING:
    from ember.services.conversations import ConversationLog

Item = dict[str, Any]
Role = Literal["user", "system", "developer", "assistant"]

# Errors raised by the chat use case name chat parameters; these are their Responses names.
_PARAM_NAMES = {"messages": "input", "response_format": "text.format"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def message_item(
    role: Role, texts: Sequence[str], *, item_id: str | None = None, status: str = "completed"
) -> Item:
    """A ``message`` item: ``output_text`` parts for the assistant, ``input_text`` otherwise."""
    if role == "assistant":
        parts = [output_text_part(text) for text in texts]
    else:
        parts = [{"type": "input_text", "text": text} for text in texts]
    return {
        "id": item_id or new_id("msg"),
        "type": "message",
        "role": role,
        "status": status,
        "content": parts,
    }


def output_text_part(text: str) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    call_id: str,
    name: str,
    arguments: str,
    *,
    item_id: str | None = None,
    status: str = "completed",
) -> Item:
    return {
        "id": item_id or new_id("fc"),
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def function_call_output_item(call_id: str, output: str, *, item_id: str | None = None) -> Item:
    return {
        "id": item_id or new_id("fco"),
        "type": "function_call_output",
        "call_id": call_id,
        "output": output,
        "status": "completed",
    }


def conversation_messages(items: Sequence[Item]) -> list[ChatMessage]:
    """Domain messages for items: a function_call joins the assistant turn before it.

    Server-side calls (``mcp_call``, ``file_search_call``) become a call and its result; an
    approval request the user declined, a call answered "declined"; listings and approval
    responses are not shown to the model.
    """
    declined = {
        item["approval_request_id"]
        for item in items
        if item["type"] == "mcp_approval_response" and not item.get("approve")
    }
    messages: list[ChatMessage] = []
    for item in items:
        kind = item["type"]
        if kind == "message":
            text = "".join(part.get("text", "") for part in item["content"])
            messages.append(ChatMessage(role=item["role"], content=text))
        elif kind == "function_call":
            call = ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(ChatMessage(role="assistant", tool_calls=(call,)))
        elif kind == "function_call_output":
            messages.append(
                ChatMessage(role="tool", content=item["output"], tool_call_id=item["call_id"])
            )
        elif kind in ("mcp_call", "file_search_call") or (
            kind == "mcp_approval_request" and item["id"] in declined
        ):
            name = item.get("name", "file_search")
            arguments = item.get("arguments") or json.dumps(
                {"query": (item.get("queries") or [""])[0]}, ensure_ascii=False
            )
            call = ToolCall(id=item["id"], name=name, arguments=arguments)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and not last.content:
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(ChatMessage(role="assistant", tool_calls=(call,)))
            result = "The user declined this call." if kind == "mcp_approval_request" else None
            messages.append(
                ChatMessage(
                    role="tool",
                    content=result or tool_result_text(item),
                    tool_call_id=item["id"],
                )
            )
    return messages


@dataclass
class ResponseRequest:
    """A Responses request in domain terms (the wire model converts itself into this).

    ``input`` holds normalized items (see :func:`message_item` and friends); ``text_format``
    is the ``text.format`` object echoed in the response, ``constraint`` what it asks of
    the engine.
    """

    model: str
    input: list[Item]
    instructions: str | None = None
    previous_response_id: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    text_format: Item = field(default_factory=lambda: {"type": "text"})
    constraint: OutputConstraint | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    store: bool = True
    user: str | None = None
    # Server-side tools (the agent loop, ember.services.agent).
    mcp_tools: tuple[McpToolRequest, ...] = ()
    file_search: FileSearchRequest | None = None
    max_tool_calls: int | None = None
    tools_echo: list[Item] | None = None  # every tool as the response repeats it
    tool_choice_echo: str | Item | None = None
    conversation_id: str | None = None
    truncation: bool = False  # "auto": drop the oldest items when the prompt does not fit
    background: bool = False


@dataclass
class PreparedResponse:
    """A response whose generation passed every check; ``conversation`` is its input.

    ``pre_output``: items made before the first model step (tool listings, calls the user
    approved); ``steps``: the request context of each model step (usage adds them up).
    """

    id: str
    request: ResponseRequest
    generation: PreparedGeneration
    conversation: list[Item]
    created_at: int = field(default_factory=lambda: int(time.time()))
    tools: AgentTools | None = None
    pre_output: list[Item] = field(default_factory=list)
    steps: list[RequestContext] = field(default_factory=list)
    calls_made: int = 0
    caller: Caller = ANONYMOUS
    dropped: int = 0  # oldest items left out of the prompt (truncation "auto")


@dataclass(frozen=True)
class ResponseStarted:
    response: Item


@dataclass(frozen=True)
class ItemAdded:
    """An output item began; messages arrive with no content, calls with no arguments."""

    output_index: int
    item: Item


@dataclass(frozen=True)
class TextDelta:
    output_index: int
    item_id: str
    text: str


@dataclass(frozen=True)
class ItemDone:
    output_index: int
    item: Item


@dataclass(frozen=True)
class ResponseFinished:
    response: Item


ResponseEvent = ResponseStarted | ItemAdded | TextDelta | ItemDone | ResponseFinished


class ResponseService:
    """Creates, stores, retrieves and deletes responses; owns previous_response_id chains
    and runs the agent loop (model steps and server-side tool calls)."""

    def __init__(
        self,
        text: TextGenerationService,
        store: Store,
        *,
        producer: str,
        toolbox: AgentToolbox | None = None,
        max_steps: int = 8,
        conversations: ConversationLog | None = None,
    ) -> None:
        self.text = text
        self.store = store
        self.producer = producer  # the AIGC label's ContentProducer
        self.toolbox = toolbox
        self.max_steps = max_steps
        self.conversations = conversations

    async def prepare(
        self, request: ResponseRequest, *, caller: Caller = ANONYMOUS
    ) -> PreparedResponse:
        """Everything that can fail because of the request, before any byte is sent.

        Server-side tools are listed here, and calls the user approved (an
        ``mcp_approval_response`` input item) run here, before the first model step.
        """
        conversation: list[Item] = []
        if request.previous_response_id is not None and request.conversation_id is not None:
            raise InvalidRequestError(
                "previous_response_id and conversation cannot be used together.",
                param="conversation",
            )
        if request.previous_response_id is not None:
            previous = self.stored(
                request.previous_response_id, caller=caller, param="previous_response_id"
            )
            conversation = [*previous.conversation, *previous.response.get("output", [])]
        if request.conversation_id is not None:
            if self.conversations is None:
                raise InvalidRequestError("Conversations are not available.", param="conversation")
            conversation = self.conversations.items_of(request.conversation_id, caller=caller)
        response_id = new_id("resp")
        tools: AgentTools | None = None
        if request.mcp_tools or request.file_search is not None:
            if self.toolbox is None:
                raise InvalidRequestError("Server-side tools are not available.", param="tools")
            listed = {
                item["server_label"]
                for item in conversation
                if item["type"] == "mcp_list_tools" and not item.get("error")
            }
            tools = await self.toolbox.resolve(
                request.mcp_tools, request.file_search, listed_before=listed, caller=caller
            )
        pre_output: list[Item] = list(tools.listings) if tools is not None else []
        calls_made = 0
        for index, item in enumerate(request.input):
            if item["type"] != "mcp_approval_response":
                continue
            # The request may be in the history, or sent back by a client that keeps it.
            history = [*conversation, *request.input[:index]]
            call = await self._approved_call(
                item, index, history, tools, caller, request.model, response_id
            )
            if call is not None:
                pre_output.append(call)
                calls_made += 1
        conversation += request.input
        choice = request.tool_choice
        if calls_made:  # the call the user approved is the call a forced choice asked for
            choice = "auto"
        limit = request.max_tool_calls
        if tools is not None and limit is not None and calls_made >= limit:
            choice = "none"
        generation, dropped = await self._fit_step(
            request, [*conversation, *pre_output], tools, choice, caller, 0
        )
        return PreparedResponse(
            response_id,
            request,
            generation,
            conversation,
            tools=tools,
            pre_output=pre_output,
            calls_made=calls_made,
            caller=caller,
            dropped=dropped,
        )

    async def _fit_step(
        self,
        request: ResponseRequest,
        items: list[Item],
        tools: AgentTools | None,
        choice: ToolChoice,
        caller: Caller,
        dropped: int,
    ) -> tuple[PreparedGeneration, int]:
        """Prepare a model step; under ``truncation: "auto"`` leave out the oldest items
        (1, 2, 4, ... more each time) until the prompt fits, never the newest user message."""
        step = 1
        while True:
            kept = _without_oldest(items, dropped)
            dropped = len(items) - len(kept)
            try:
                return await self._prepare_step(request, kept, tools, choice, caller), dropped
            except ContextLengthExceededError:
                if not request.truncation or len(kept) <= 1 or _last_user(kept) == 0:
                    raise
                dropped = min(dropped + step, _last_user(items))
                step *= 2

    async def _approved_call(
        self,
        item: Item,
        index: int,
        conversation: list[Item],
        tools: AgentTools | None,
        caller: Caller,
        model: str,
        response_id: str,
    ) -> Item | None:
        param = f"input[{index}].approval_request_id"
        wanted = item["approval_request_id"]
        asked = next(
            (i for i in conversation if i["type"] == "mcp_approval_request" and i["id"] == wanted),
            None,
        )
        if asked is None:
            raise InvalidRequestError(
                f"No mcp_approval_request with id {wanted!r} in the conversation.", param=param
            )
        if any(
            i["type"] == "mcp_call" and i.get("approval_request_id") == wanted for i in conversation
        ):
            raise InvalidRequestError(
                f"The approval request {wanted!r} was already answered.", param=param
            )
        if tools is None or tools.selection(asked["server_label"]) is None:
            raise InvalidRequestError(
                f"Send the mcp tool for server {asked['server_label']!r} again with the "
                "approval response.",
                param="tools",
            )
        if not item.get("approve"):
            return None
        if asked["name"] not in tools.by_name:
            raise InvalidRequestError(
                f"The tool {asked['name']!r} is not among the allowed tools of server "
                f"{asked['server_label']!r}.",
                param=param,
            )
        assert self.toolbox is not None
        return await self.toolbox.execute(
            tools,
            asked["name"],
            asked["arguments"],
            caller=caller,
            model=model,
            request_id=response_id,
            approval_request_id=wanted,
            approved=True,
        )

    async def _prepare_step(
        self,
        request: ResponseRequest,
        items: list[Item],
        tools: AgentTools | None,
        choice: ToolChoice,
        caller: Caller,
    ) -> PreparedGeneration:
        messages = conversation_messages(items)
        if request.instructions:
            messages.insert(0, ChatMessage(role="system", content=request.instructions))
        specs = request.tools + (tools.specs() if tools is not None else ())
        if choice not in ("auto", "none", "required") and all(t.name != choice for t in specs):
            raise InvalidRequestError(
                f"tool_choice names {choice!r}, which is not among the tools.",
                param="tool_choice",
            )
        if not specs and choice == "required":
            choice = "auto"  # every server tool was filtered out or failed to list
        chat = ChatRequest(
            model=request.model,
            messages=messages,
            params=request.params,
            tools=specs,
            tool_choice=choice,
            parallel_tool_calls=request.parallel_tool_calls,
            response_format=request.constraint,
        )
        try:
            return await self.text.prepare_chat(chat, endpoint="responses", caller=caller)
        except EmberError as exc:
            exc.param = _PARAM_NAMES.get(exc.param or "", exc.param)
            raise

    async def run(self, prepared: PreparedResponse) -> AsyncIterator[ResponseEvent]:
        """Run the loop: a model step, the server-side calls it made, again, until an
        answer, a client-side function call, an approval request, ``max_tool_calls`` or
        ``max_tool_steps``; yield items as they form, then the finished (stored) response."""
        yield ResponseStarted(self._response(prepared, [], status="in_progress"))
        output: list[Item] = []
        for item in prepared.pre_output:
            output.append(item)
            yield ItemAdded(len(output) - 1, _in_progress(item))
            yield ItemDone(len(output) - 1, copy.deepcopy(item))
        request = prepared.request
        generation = prepared.generation
        step = 1
        finish: FinishReason = "stop"
        while True:
            prepared.steps.append(generation.ctx)
            server_calls: list[ToolCall] = []
            client_calls = False
            message: Item | None = None
            async for event in self.text.run(generation):
                if isinstance(event, ContentDelta) and event.text:
                    if message is None:
                        message = message_item("assistant", [], status="in_progress")
                        output.append(message)
                        yield ItemAdded(len(output) - 1, copy.deepcopy(message))
                        message["content"].append(output_text_part(""))
                    message["content"][0]["text"] += event.text
                    yield TextDelta(len(output) - 1, message["id"], event.text)
                elif isinstance(event, ToolCallDelta):
                    if message is not None:
                        message["status"] = "completed"
                        yield ItemDone(len(output) - 1, copy.deepcopy(message))
                        message = None
                    call = event.call
                    if prepared.tools is not None and prepared.tools.handles(call.name):
                        server_calls.append(call)
                        continue
                    client_calls = True
                    item = function_call_item(call.id, call.name, "", status="in_progress")
                    output.append(item)
                    yield ItemAdded(len(output) - 1, copy.deepcopy(item))
                    item.update(arguments=call.arguments, status="completed")
                    yield ItemDone(len(output) - 1, copy.deepcopy(item))
                elif isinstance(event, ChoiceEnd):
                    finish = event.finish_reason
            status = "completed" if finish in ("stop", "tool_calls") else "incomplete"
            if message is not None:
                message["status"] = status
                yield ItemDone(len(output) - 1, copy.deepcopy(message))
            stop = client_calls or not server_calls or status != "completed"
            for call in server_calls:
                limit = request.max_tool_calls
                if limit is not None and prepared.calls_made >= limit:
                    continue  # past max_tool_calls: further calls are ignored
                assert self.toolbox is not None and prepared.tools is not None
                item = await self.toolbox.execute(
                    prepared.tools,
                    call.name,
                    call.arguments,
                    caller=prepared.caller,
                    model=request.model,
                    request_id=prepared.id,
                )
                output.append(item)
                yield ItemAdded(len(output) - 1, _in_progress(item))
                yield ItemDone(len(output) - 1, copy.deepcopy(item))
                if item["type"] == "mcp_approval_request":
                    stop = True
                else:
                    prepared.calls_made += 1
            if stop or step >= self.max_steps:
                break
            limit = request.max_tool_calls
            last = step + 1 >= self.max_steps or (
                limit is not None and prepared.calls_made >= limit
            )
            generation, prepared.dropped = await self._fit_step(
                request,
                [*prepared.conversation, *output],
                prepared.tools,
                "none" if last else "auto",
                prepared.caller,
                prepared.dropped,
            )
            step += 1
        status = "completed" if finish in ("stop", "tool_calls") else "incomplete"
        if not output:  # the model said nothing: still answer with an (empty) message
            message = message_item("assistant", [], status="in_progress")
            output.append(message)
            yield ItemAdded(0, copy.deepcopy(message))
            message["content"].append(output_text_part(""))
            message["status"] = status
            yield ItemDone(0, copy.deepcopy(message))
        response = self._response(prepared, output, status=status, finish=finish)
        ctx = generation.ctx  # labelled before storing: a retrieved response is the same
        attach(response, implicit_label(self.producer, ctx.request_id, ctx.output_text))
        if prepared.request.store:
            self.store.save_response(
                StoredResponse(
                    id=prepared.id,
                    model=response["model"],
                    created_at=prepared.created_at,
                    previous_response_id=prepared.request.previous_response_id,
                    conversation=prepared.conversation,
                    response=response,
                    owner=prepared.caller.owner,
                )
            )
        if request.conversation_id is not None and self.conversations is not None:
            self.conversations.append(request.conversation_id, [*request.input, *output])
        yield ResponseFinished(response)

    def get(self, response_id: str, *, caller: Caller = ANONYMOUS) -> Item:
        return self.stored(response_id, caller=caller).response

    def delete(self, response_id: str, *, caller: Caller = ANONYMOUS) -> Item:
        self.stored(response_id, caller=caller)
        if not self.store.delete_response(response_id):
            raise _not_found(response_id, param="response_id")
        return {"id": response_id, "object": "response", "deleted": True}

    def input_items(
        self,
        response_id: str,
        *,
        limit: int = 20,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        caller: Caller = ANONYMOUS,
    ) -> Item:
        """One page of the items that made up the response's input (a ``list`` object)."""
        items = self.stored(response_id, caller=caller).conversation
        return item_page(items, limit=limit, order=order, after=after)

    def stored(
        self, response_id: str, *, caller: Caller = ANONYMOUS, param: str = "response_id"
    ) -> StoredResponse:
        """The stored response, if it exists for ``caller``: another tenant's is the 404 of
        a missing one, so its existence does not leak."""
        stored = self.store.get_response(response_id)
        if stored is None or not caller.may_see(stored.owner):
            raise _not_found(response_id, param=param)
        return stored

    def response_object(
        self, prepared: PreparedResponse, output: list[Item], *, status: str
    ) -> Item:
        """The ``response`` object as it stands (a background response while it runs)."""
        return self._response(prepared, output, status=status)

    @staticmethod
    def _response(
        prepared: PreparedResponse,
        output: list[Item],
        *,
        status: str,
        finish: FinishReason | None = None,
    ) -> Item:
        request = prepared.request
        steps = prepared.steps or [prepared.generation.ctx]
        prompt_tokens = sum(ctx.usage.prompt_tokens for ctx in steps)
        completion_tokens = sum(ctx.usage.completion_tokens for ctx in steps)
        incomplete = None
        if status == "incomplete":
            reason = "content_filter" if finish == "content_filter" else "max_output_tokens"
            incomplete = {"reason": reason}
        done = status not in ("in_progress", "queued", "cancelled")
        body: Item = {
            "id": prepared.id,
            "object": "response",
            "created_at": prepared.created_at,
            "completed_at": int(time.time()) if status == "completed" else None,
            "status": status,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": request.instructions,
            "max_output_tokens": request.params.max_tokens,
            "max_tool_calls": request.max_tool_calls,
            "conversation": {"id": request.conversation_id} if request.conversation_id else None,
            "model": prepared.generation.spec.id,
            "output": output,
            "parallel_tool_calls": request.parallel_tool_calls,
            "previous_response_id": request.previous_response_id,
            "temperature": request.params.temperature,
            "top_p": request.params.top_p,
            "text": {"format": request.text_format},
            "tool_choice": request.tool_choice_echo or _tool_choice_dict(request.tool_choice),
            "tools": request.tools_echo
            if request.tools_echo is not None
            else [_tool_dict(tool) for tool in request.tools],
            "truncation": "auto" if request.truncation else "disabled",
            "background": request.background,
            "store": request.store,
            "metadata": request.metadata,
            "user": request.user,
            "usage": {
                "input_tokens": prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt_tokens + completion_tokens,
            }
            if done
            else None,
        }
        if prepared.dropped:  # truncation "auto" left items out: say how many
            body["ember"] = {"truncated_items": prepared.dropped}
        Response.model_validate(body)  # the response must be what the SDK expects
        return body


def _last_user(items: Sequence[Item]) -> int:
    """The index of the newest user message (0 when there is none)."""
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if item["type"] == "message" and item["role"] == "user":
            return index
    return 0


def _without_oldest(items: list[Item], dropped: int) -> list[Item]:
    """``items`` less the ``dropped`` oldest, and less the calls' results and approvals
    whose call went with them (a tool result must follow its call)."""
    kept = items[dropped:]
    while dropped and kept and kept[0]["type"] not in ("message", "function_call"):
        kept = kept[1:]
    return kept


def _in_progress(item: Item) -> Item:
    """An item as ``output_item.added`` shows it: a call without its result yet."""
    added = copy.deepcopy(item)
    if added["type"] == "mcp_call":
        added.update(output=None, error=None, status="in_progress")
    elif added["type"] == "file_search_call":
        added.update(results=None, status="in_progress")
    elif added["type"] == "mcp_list_tools":
        added.update(tools=[], error=None)
    return added


def _tool_dict(tool: ToolSpec) -> Item:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": tool.strict,
    }


def _tool_choice_dict(choice: ToolChoice) -> str | Item:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "name": choice}


def _not_found(response_id: str, *, param: str) -> NotFoundError:
    return NotFoundError(f"No response found with id '{response_id}'.", param=param)
