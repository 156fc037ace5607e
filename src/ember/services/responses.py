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
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from openai.types.responses import Response

from ember.core.request_context import ANONYMOUS, Caller
from ember.core.types import (
    ChatMessage,
    FinishReason,
    OutputConstraint,
    SamplingParams,
    ToolCall,
    ToolSpec,
)
from ember.errors import EmberError, NotFoundError
from ember.guard.aigc import attach, implicit_label
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
    """Domain messages for items: a function_call joins the assistant turn before it."""
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


@dataclass
class PreparedResponse:
    """A response whose generation passed every check; ``conversation`` is its input."""

    id: str
    request: ResponseRequest
    generation: PreparedGeneration
    conversation: list[Item]
    created_at: int = field(default_factory=lambda: int(time.time()))


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
    """Creates, stores, retrieves and deletes responses; owns previous_response_id chains."""

    def __init__(self, text: TextGenerationService, store: Store, *, producer: str) -> None:
        self.text = text
        self.store = store
        self.producer = producer  # the AIGC label's ContentProducer

    async def prepare(
        self, request: ResponseRequest, *, caller: Caller = ANONYMOUS
    ) -> PreparedResponse:
        """Everything that can fail because of the request, before any byte is sent."""
        conversation: list[Item] = []
        if request.previous_response_id is not None:
            previous = self._stored(request.previous_response_id, param="previous_response_id")
            conversation = [*previous.conversation, *previous.response.get("output", [])]
        conversation += request.input
        messages = conversation_messages(conversation)
        if request.instructions:
            messages.insert(0, ChatMessage(role="system", content=request.instructions))
        chat = ChatRequest(
            model=request.model,
            messages=messages,
            params=request.params,
            tools=request.tools,
            tool_choice=request.tool_choice,
            parallel_tool_calls=request.parallel_tool_calls,
            response_format=request.constraint,
        )
        try:
            generation = await self.text.prepare_chat(chat, endpoint="responses", caller=caller)
        except EmberError as exc:
            exc.param = _PARAM_NAMES.get(exc.param or "", exc.param)
            raise
        return PreparedResponse(new_id("resp"), request, generation, conversation)

    async def run(self, prepared: PreparedResponse) -> AsyncIterator[ResponseEvent]:
        """Generate; yield output items as they form, then the finished (stored) response."""
        yield ResponseStarted(self._response(prepared, [], status="in_progress"))
        output: list[Item] = []
        message: Item | None = None
        finish: FinishReason = "stop"
        async for event in self.text.run(prepared.generation):
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
                item = function_call_item(call.id, call.name, "", status="in_progress")
                output.append(item)
                yield ItemAdded(len(output) - 1, copy.deepcopy(item))
                item.update(arguments=call.arguments, status="completed")
                yield ItemDone(len(output) - 1, copy.deepcopy(item))
            elif isinstance(event, ChoiceEnd):
                finish = event.finish_reason
        status = "completed" if finish in ("stop", "tool_calls") else "incomplete"
        if not output:  # the model said nothing: still answer with an (empty) message
            message = message_item("assistant", [], status="in_progress")
            output.append(message)
            yield ItemAdded(0, copy.deepcopy(message))
            message["content"].append(output_text_part(""))
        if message is not None:
            message["status"] = status
            yield ItemDone(len(output) - 1, copy.deepcopy(message))
        response = self._response(prepared, output, status=status, finish=finish)
        ctx = prepared.generation.ctx  # labelled before storing: a retrieved response is the same
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
                )
            )
        yield ResponseFinished(response)

    def get(self, response_id: str) -> Item:
        return self._stored(response_id).response

    def delete(self, response_id: str) -> Item:
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
    ) -> Item:
        """One page of the items that made up the response's input (a ``list`` object)."""
        items = list(self._stored(response_id).conversation)
        if order == "desc":
            items.reverse()
        if after is not None:
            ids = [item.get("id") for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }

    def _stored(self, response_id: str, *, param: str = "response_id") -> StoredResponse:
        stored = self.store.get_response(response_id)
        if stored is None:
            raise _not_found(response_id, param=param)
        return stored

    @staticmethod
    def _response(
        prepared: PreparedResponse,
        output: list[Item],
        *,
        status: str,
        finish: FinishReason | None = None,
    ) -> Item:
        request = prepared.request
        usage = prepared.generation.ctx.usage
        incomplete = None
        if status == "incomplete":
            reason = "content_filter" if finish == "content_filter" else "max_output_tokens"
            incomplete = {"reason": reason}
        done = status != "in_progress"
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
            "model": prepared.generation.spec.id,
            "output": output,
            "parallel_tool_calls": request.parallel_tool_calls,
            "previous_response_id": request.previous_response_id,
            "temperature": request.params.temperature,
            "top_p": request.params.top_p,
            "text": {"format": request.text_format},
            "tool_choice": _tool_choice_dict(request.tool_choice),
            "tools": [_tool_dict(tool) for tool in request.tools],
            "truncation": "disabled",
            "background": False,
            "store": request.store,
            "metadata": request.metadata,
            "user": request.user,
            "usage": {
                "input_tokens": usage.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": usage.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage.total_tokens,
            }
            if done
            else None,
        }
        Response.model_validate(body)  # the response must be what the SDK expects
        return body


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
