"""Table-driven tests of the pure pieces: stop strings, tool-call parsing, templates."""

from __future__ import annotations

import asyncio
import json

import pytest

from ember.core.chat_template import ChatTemplate
from ember.core.request_context import RequestContext
from ember.core.tool_calls import ToolCallParser, parse_output
from ember.core.types import (
    ChatMessage,
    GenerationChunk,
    OutputConstraint,
    SamplingParams,
    ToolCall,
    ToolSpec,
)
from ember.engines.base import EngineCapabilities, TextEngine
from ember.engines.grammar import closed_schema, grammar_for
from ember.errors import InvalidRequestError, ServerOverloadedError
from ember.models.spec import ModelSpec
from ember.services.generation import StopStringFilter
from ember.services.generation_types import ContentDelta, PreparedGeneration
from ember.services.pipeline import Pipeline
from ember.services.text_generation import TextGenerationService


@pytest.mark.parametrize(
    ("stops", "pieces", "emitted", "stopped"),
    [
        ((), ["Hello", " world"], "Hello world", False),
        (("END",), ["Hello E", "N", "D more"], "Hello ", True),
        (("END",), ["Hello E", "NX"], "Hello ENX", False),
        (("\n\n",), ["a\n", "\nb"], "a", True),
        (("stop", "halt"), ["we ha", "lt now"], "we ", True),
        (("abc",), ["xab", "xab"], "xabxab", False),
    ],
)
def test_stop_string_filter(
    stops: tuple[str, ...], pieces: list[str], emitted: str, stopped: bool
) -> None:
    flt = StopStringFilter(stops)
    out = ""
    for piece in pieces:
        out += flt.feed(piece)
        if flt.stopped:
            break
    if not flt.stopped:
        out += flt.flush()
    assert out == emitted
    assert flt.stopped is stopped


CALL = '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>'


@pytest.mark.parametrize(
    ("text", "content", "names"),
    [
        ("Just text.", "Just text.", []),
        (CALL, "", ["f"]),
        (CALL + "\n" + CALL.replace('"f"', '"g"'), "", ["f", "g"]),
        ("  " + CALL, "", ["f"]),
        ("<b>bold</b> text", "<b>bold</b> text", []),
        ("<tool_call>\nnot json\n</tool_call>", "", []),
        ('{"name": "f", "arguments": {"x": 1}}', "", ["f"]),
        ('  {"name": "f", "arguments": {}}', "", ["f"]),
    ],
)
def test_parse_output(text: str, content: str, names: list[str]) -> None:
    parsed = parse_output(text)
    assert parsed.content == content
    assert [call.name for call in parsed.tool_calls] == names


def test_tool_call_parser_handles_split_tags() -> None:
    parser = ToolCallParser()
    seen: list[ToolCall] = []
    for i in range(0, len(CALL), 3):
        text, calls = parser.feed(CALL[i : i + 3])
        assert text == ""
        seen.extend(calls)
    assert [c.name for c in seen] == ["f"]
    assert json.loads(seen[0].arguments) == {"x": 1}


TOOL = ToolSpec(name="get_weather", parameters={"type": "object", "properties": {"city": {}}})
TOOLS_TEMPLATE = (
    "{% if tools %}TOOLS:{{ tools | tojson }}\n{% endif %}"
    "{% for m in messages %}[{{ m.role }}]{{ m.content }}"
    "{% if m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}"
)


def test_template_without_tool_support_gets_tools_in_system_prompt() -> None:
    template = ChatTemplate(None)  # ChatML fallback: knows nothing of tools
    prompt = template.render(
        [
            ChatMessage(role="user", content="weather?"),
            ChatMessage(
                role="assistant",
                tool_calls=(ToolCall(id="c1", name="get_weather", arguments='{"city": "X"}'),),
            ),
            ChatMessage(role="tool", content="sunny", tool_call_id="c1"),
        ],
        tools=[TOOL],
    )
    assert prompt.startswith("<|im_start|>system\nYou may call")
    assert '"name": "get_weather"' in prompt
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "X"}}' in prompt
    assert "<tool_response>\nsunny\n</tool_response>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_template_with_tool_support_gets_native_tools() -> None:
    template = ChatTemplate(TOOLS_TEMPLATE)
    prompt = template.render(
        [
            ChatMessage(role="developer", content="be brief"),
            ChatMessage(
                role="assistant",
                tool_calls=(ToolCall(id="c1", name="get_weather", arguments='{"city": "X"}'),),
            ),
        ],
        tools=[TOOL],
    )
    assert prompt.startswith('TOOLS:[{"type": "function"')
    assert "[system]be brief" in prompt  # developer maps to system
    assert '"arguments": {"city": "X"}' in prompt


def test_template_errors_become_400() -> None:
    template = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(InvalidRequestError) as error:
        template.render([ChatMessage(role="user", content="x")])
    assert "roles must alternate" in error.value.message


def test_closed_schema_closes_only_unsaid_objects() -> None:
    schema = {
        "type": "object",
        "properties": {
            "inner": {"type": "object", "properties": {"a": {"type": "string"}}},
            "open": {"type": "object", "additionalProperties": True},
        },
    }
    closed = closed_schema(schema)
    assert closed["additionalProperties"] is False
    assert closed["properties"]["inner"]["additionalProperties"] is False
    assert closed["properties"]["open"]["additionalProperties"] is True
    assert "additionalProperties" not in schema  # the input is not modified


@pytest.mark.parametrize(
    "constraint",
    [
        OutputConstraint(kind="json_object"),
        OutputConstraint(
            kind="json_schema", schema={"type": "array", "items": {"type": "integer"}}
        ),
        OutputConstraint(kind="tool_calls", tools=(TOOL,), tool_mode="auto"),
        OutputConstraint(kind="tool_calls", tools=(TOOL, ToolSpec(name="b")), parallel=False),
    ],
)
def test_grammars_compile(constraint: OutputConstraint) -> None:
    import llguidance

    grammar = grammar_for(constraint)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    assert not is_error, messages


class _OneSlotEngine(TextEngine):
    """A batching engine with one slot and no queue: a second submit is refused at once."""

    batching = True
    capabilities = EngineCapabilities(chat=True, completion=True, streaming=True)

    def __init__(self) -> None:
        super().__init__()
        self.submitted = 0
        self.busy_slot = False

    @property
    def memory_bytes(self) -> int:
        return 0

    @property
    def context_length(self) -> int:
        return 64

    @property
    def chat_template(self) -> ChatTemplate:
        return ChatTemplate(None)

    def tokenize(self, text: str) -> list[int]:
        return list(text.encode())

    def generate(self, prompt_tokens, params, *, constraint=None, cancel=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def submit(self, prompt_tokens, params, *, constraint, cancel, emit):  # type: ignore[no-untyped-def]
        if self.busy_slot:
            raise ServerOverloadedError("The model is busy.", retry_after_s=2)
        self.busy_slot = True
        self.submitted += 1
        emit(GenerationChunk(text="hi", tokens=1))
        emit(GenerationChunk(text="!", tokens=1, finish_reason="stop"))


class _Recorded:
    name = "recorded"

    def __init__(self) -> None:
        self.completed: list[str] = []

    async def on_request(self, ctx: RequestContext) -> None:
        pass

    def output_filter(self, ctx: RequestContext) -> None:
        return None

    async def on_complete(self, ctx: RequestContext) -> None:
        self.completed.append(ctx.status)


def test_admit_hands_the_first_choice_to_the_engine_before_any_byte() -> None:
    """``admit`` submits now, so a full queue raises before a stream starts (a 503, not an
    error event after a 200); ``run`` then reads the admitted generation, submitting nothing
    again; a refusal completes the pipeline as refused."""
    engine = _OneSlotEngine()
    recorded = _Recorded()
    service = TextGenerationService(None, Pipeline([recorded]))  # type: ignore[arg-type]

    def prepared() -> PreparedGeneration:
        spec = ModelSpec(id="one", engine="one", kind="chat", source="config")
        ctx = RequestContext(endpoint="chat.completions", model="one")
        return PreparedGeneration(spec, engine, ctx, [1, 2, 3], SamplingParams(max_tokens=4))

    async def scenario() -> str:
        first = prepared()
        await service.admit(first)
        assert engine.submitted == 1 and first.admitted is not None
        with pytest.raises(ServerOverloadedError) as refused:
            await service.admit(prepared())
        assert refused.value.retry_after_s == 2
        assert recorded.completed == ["refused"]
        return "".join([e.text async for e in service.run(first) if isinstance(e, ContentDelta)])

    assert asyncio.run(scenario()) == "hi!"
    assert engine.submitted == 1 and recorded.completed[-1] == "ok"
