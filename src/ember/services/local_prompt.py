"""A request for a local engine, checked and tokenized before any byte is sent.

Everything that can fail because of the request (a parameter the model cannot honour, a
tool choice naming no tool, a prompt over the context) fails here, as an ordinary HTTP
error, before a stream starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from ember.core.chat_template import ANSWER_HINT, TOOL_CHOICE_HINT
from ember.core.request_context import RequestContext
from ember.core.tool_repeats import answered_calls
from ember.core.types import OutputConstraint, SamplingParams, ToolSpec
from ember.engines.base import TextEngine
from ember.errors import ContextLengthExceededError, InvalidRequestError, UnsupportedParameterError
from ember.models.spec import ModelSpec
from ember.services.generation_types import ChatRequest, PreparedGeneration


def prepare_local_chat(
    spec: ModelSpec, engine: TextEngine, request: ChatRequest, ctx: RequestContext
) -> PreparedGeneration:
    """The chat prompt rendered with the model's template (tools and output constraint)."""
    caps = engine.capabilities
    if request.params.logprobs and not caps.logprobs:
        raise UnsupportedParameterError(
            f"The model '{spec.id}' cannot return logprobs.", param="logprobs"
        )
    constraint = request.response_format
    tools: Sequence[ToolSpec] = ()
    if request.tools and request.tool_choice != "none":
        if not caps.tools:
            raise UnsupportedParameterError(
                f"The model '{spec.id}' does not support tools.", param="tools"
            )
        tools = chosen_tools(request)
        constraint = OutputConstraint(
            kind="tool_calls",
            tools=tuple(tools),
            tool_mode="auto" if request.tool_choice == "auto" else "required",
            parallel=request.parallel_tool_calls,
        )
    # Structured output (JSON mode, tool calls) never gets the visible AIGC notice.
    ctx.structured_output = constraint is not None
    if constraint is not None and not caps.json_schema:
        raise UnsupportedParameterError(
            f"The model '{spec.id}' cannot constrain its output.", param="response_format"
        )
    hint = TOOL_CHOICE_HINT if tools and request.tool_choice == "auto" else ""
    if request.tools and request.tool_choice == "none" and constraint is None and caps.json_schema:
        # "none" means a message, not a call: text that may not begin the way a call does
        # (small models otherwise write the call as JSON text), and after this turn's tool
        # results, the hint to answer from them.
        constraint = OutputConstraint(kind="tool_calls", tools=request.tools, tool_mode="text")
        hint = ANSWER_HINT if answered_calls(ctx.messages) else ""
    prompt = engine.chat_template.render(
        ctx.messages, tools=request.tools if tools else (), tool_hint=hint
    )
    tokens = engine.tokenize(prompt)
    check_context(engine, tokens, request.params, param="messages")
    ctx.usage.prompt_tokens = len(tokens)
    return PreparedGeneration(
        spec=spec,
        engine=engine,
        ctx=ctx,
        prompt_tokens=tokens,
        params=request.params,
        constraint=constraint,
        parses_tools=bool(tools),
        n=request.n,
    )


def answer_prompt(engine: TextEngine, ctx: RequestContext) -> list[int]:
    """The prompt for the decision step's second ask: the conversation with its tool results,
    no tools offered, and :data:`ANSWER_HINT`. No longer than the first prompt, which fit."""
    return engine.tokenize(engine.chat_template.render(ctx.messages, tool_hint=ANSWER_HINT))


def prepare_local_completion(
    spec: ModelSpec, engine: TextEngine, params: SamplingParams, ctx: RequestContext, *, n: int
) -> PreparedGeneration:
    """A plain completion: the prompt as it is, no template."""
    if params.logprobs and not engine.capabilities.logprobs:
        raise UnsupportedParameterError(
            f"The model '{spec.id}' cannot return logprobs.", param="logprobs"
        )
    tokens = engine.tokenize(ctx.messages[0].content or "")
    check_context(engine, tokens, params, param="prompt")
    ctx.usage.prompt_tokens = len(tokens)
    return PreparedGeneration(spec, engine, ctx, tokens, params, n=n)


def check_context(
    engine: TextEngine, tokens: list[int], params: SamplingParams, *, param: str
) -> None:
    limit = engine.context_length
    wanted = len(tokens) + (params.max_tokens or 1)
    if len(tokens) >= limit or (params.max_tokens is not None and wanted > limit):
        asked = f" + {params.max_tokens} completion tokens" if params.max_tokens else ""
        raise ContextLengthExceededError(
            f"This model's maximum context length is {limit} tokens, but {len(tokens)} "
            f"prompt tokens{asked} were requested. Shorten the {param} or lower max_tokens.",
            param=param,
        )


def chosen_tools(request: ChatRequest) -> list[ToolSpec]:
    if request.tool_choice in ("auto", "required"):
        return list(request.tools)
    named = [tool for tool in request.tools if tool.name == request.tool_choice]
    if not named:
        raise InvalidRequestError(
            f"tool_choice names the function '{request.tool_choice}', which is not in tools.",
            param="tool_choice",
        )
    return named
