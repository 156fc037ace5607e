"""Tool calls in the forms small models write: the parser, argument repair and the grammar.

Model-free. The parser rows are outputs the default model (Qwen2.5-Coder-0.5B) wrote for BFCL
requests before the grammar constrained these forms, plus the near-misses that must stay text.
"""

from __future__ import annotations

import json
from typing import Any

import llguidance
import pytest

from ember.core.chat_template import ANSWER_HINT, TOOL_CHOICE_HINT, ChatTemplate
from ember.core.tool_arguments import repair_arguments
from ember.core.tool_calls import ToolCallParser, parse_output
from ember.core.tool_repeats import answered_calls, is_repeat
from ember.core.types import ChatMessage, OutputConstraint, ToolCall, ToolSpec
from ember.engines.grammar import grammar_for

WEATHER = ToolSpec(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
)
AREA = ToolSpec(
    name="calculate_triangle_area",
    parameters={
        "type": "object",
        "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}},
        "required": ["base", "height"],
    },
)
TOOLS = (WEATHER, AREA)
PARIS = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
ROME = '{"name": "get_weather", "arguments": {"city": "Rome"}}'


@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        # fenced json, as the default model writes it in "auto" mode
        (f"```json\n{PARIS}\n```", "", [("get_weather", {"city": "Paris"})]),
        (f"```\n{PARIS}\n```", "", [("get_weather", {"city": "Paris"})]),
        (
            '```json\n{"name": "calculate_triangle_area", "arguments": {"base": 10, '
            '"height": 5}}\n```',
            "",
            [("calculate_triangle_area", {"base": 10, "height": 5})],
        ),
        # a list of calls, fenced or bare; two fenced blocks in a row
        (
            f"```json\n[{PARIS}, {ROME}]\n```",
            "",
            [("get_weather", {"city": "Paris"})] * 1 + [("get_weather", {"city": "Rome"})],
        ),
        (
            f"[{PARIS}, {ROME}]",
            "",
            [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})],
        ),
        (
            f"```json\n{PARIS}\n```\n\n```json\n{ROME}\n```\n",
            "",
            [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})],
        ),
        # bare object, tagged blocks
        (PARIS, "", [("get_weather", {"city": "Paris"})]),
        (f"  {PARIS}", "", [("get_weather", {"city": "Paris"})]),
        (f"<tool_call>\n{PARIS}\n</tool_call>", "", [("get_weather", {"city": "Paris"})]),
        # "parameters" for "arguments", arguments as a JSON string, repaired types
        (
            '{"name": "get_weather", "parameters": {"city": "Oslo", "days": "3"}}',
            "",
            [("get_weather", {"city": "Oslo", "days": 3})],
        ),
        (
            '{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}',
            "",
            [("get_weather", {"city": "Oslo"})],
        ),
        # text after a fenced call stays text
        (
            f"```json\n{PARIS}\n```\nThat asks for the weather.",
            "\nThat asks for the weather.",
            [("get_weather", {"city": "Paris"})],
        ),
        # near-misses: text, returned whole
        ("```python\nprint(1)\n```", "```python\nprint(1)\n```", []),
        ('```json\n{"city": "Paris"}\n```', '```json\n{"city": "Paris"}\n```', []),
        ('{"name": "send_email", "arguments": {}}', '{"name": "send_email", "arguments": {}}', []),
        (
            '{"name": "get_weather", "arguments": {}}',
            '{"name": "get_weather", "arguments": {}}',
            [],
        ),
        ("[1, 2, 3]", "[1, 2, 3]", []),
        ("The `get_weather` tool needs a city.", "The `get_weather` tool needs a city.", []),
        ("<b>bold</b>", "<b>bold</b>", []),
    ],
)
def test_parser_reads_the_forms_small_models_write(
    text: str, content: str, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    parsed = parse_output(text, TOOLS)
    assert parsed.content == content
    assert [(c.name, json.loads(c.arguments)) for c in parsed.tool_calls] == calls
    # Streamed in 3-character pieces, the same content and calls come out.
    parser = ToolCallParser(TOOLS)
    streamed, seen = "", []
    for start in range(0, len(text), 3):
        out, done = parser.feed(text[start : start + 3])
        streamed += out
        seen += done
    out, done = parser.finish()
    assert streamed + out == content
    assert [(c.name, json.loads(c.arguments)) for c in seen + done] == calls


@pytest.mark.parametrize(
    ("text", "content", "names"),
    [
        (f"```json\n{PARIS}\n```", f"```json\n{PARIS}\n```", []),
        (f"[{PARIS}]", f"[{PARIS}]", []),
        ('{"name": "any_name", "arguments": {"x": 1}}', "", ["any_name"]),
        ('<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>', "", ["f"]),
    ],
)
def test_without_the_tools_only_tagged_and_bare_calls_count(
    text: str, content: str, names: list[str]
) -> None:
    parsed = parse_output(text)
    assert parsed.content == content
    assert [call.name for call in parsed.tool_calls] == names


def test_a_fenced_call_streams_no_text_before_it_closes() -> None:
    parser = ToolCallParser(TOOLS)
    text = f"```json\n{PARIS}\n```"
    outputs = [parser.feed(text[i : i + 4]) for i in range(0, len(text), 4)]
    assert all(out == "" for out, _ in outputs)
    assert [c.name for _, calls in outputs for c in calls] == ["get_weather"]


@pytest.mark.parametrize(
    ("arguments", "repaired"),
    [
        ({"city": "Paris"}, {"city": "Paris"}),
        ({"city": "Paris", "days": "3"}, {"city": "Paris", "days": 3}),
        ({"city": "Paris", "days": 3.0}, {"city": "Paris", "days": 3}),
        ({"city": 42}, {"city": "42"}),
        ({"city": "Paris", "unit": "Celsius"}, {"city": "Paris", "unit": "celsius"}),
        ({"city": "Paris", "unit": "kelvin"}, {"city": "Paris"}),  # optional and wrong: dropped
        ({"city": "Paris", "days": "soon"}, {"city": "Paris"}),
        ({"city": "Paris", "country": "FR"}, {"city": "Paris", "country": "FR"}),
        ({}, None),  # the required city is missing
        ({"city": None}, None),
        ({"city": ["Paris"]}, None),
        ("Paris", None),
    ],
)
def test_arguments_are_repaired_against_the_schema(
    arguments: Any, repaired: dict[str, Any] | None
) -> None:
    assert repair_arguments(arguments, WEATHER.parameters) == repaired


def test_repair_follows_arrays_booleans_and_closed_objects() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "integer"}},
            "flag": {"type": "boolean"},
            "rate": {"type": "number"},
        },
        "additionalProperties": False,
    }
    assert repair_arguments({"tags": "7", "flag": "true", "rate": "0.5", "x": 1}, schema) == {
        "tags": [7],
        "flag": True,
        "rate": 0.5,
    }
    assert repair_arguments({"tags": ["a"]}, schema) == {}  # optional and unfixable: dropped
    assert repair_arguments({"tags": ["a"]}, {**schema, "required": ["tags"]}) is None


class _ByteTokenizer:
    """One token per byte, plus an end-of-sequence token: the grammar seen byte by byte."""

    eos_token_id = 256
    bos_token_id = None
    tokens = (*(bytes([i]) for i in range(256)), b"\xff<eos>")
    special_token_ids = (256,)

    def __call__(self, text: bytes) -> list[int]:
        return list(text)


BYTES = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_ByteTokenizer()))


def _accepts(constraint: OutputConstraint, text: str) -> bool:
    matcher = llguidance.LLMatcher(BYTES, grammar_for(constraint))
    return bool(matcher.consume_tokens(list(text.encode()))) and matcher.is_accepting()


AUTO = OutputConstraint(kind="tool_calls", tools=TOOLS, tool_mode="auto")
REQUIRED = OutputConstraint(kind="tool_calls", tools=TOOLS, tool_mode="required")
SINGLE = OutputConstraint(kind="tool_calls", tools=TOOLS, tool_mode="auto", parallel=False)
TEXT = OutputConstraint(kind="tool_calls", tools=TOOLS, tool_mode="text")


@pytest.mark.parametrize(
    ("constraint", "text", "accepted"),
    [
        (AUTO, "The weather tool needs a city.", True),
        (AUTO, "```python\nprint(1)\n```", True),
        (AUTO, f"```json\n{PARIS}\n```", True),
        (AUTO, f"```json\n[{PARIS}, {ROME}]\n```", True),
        (AUTO, f"```json\n{PARIS}\n```\n\n```json\n{ROME}\n```", True),
        (AUTO, f"[{PARIS}, {ROME}]", True),
        (AUTO, PARIS, True),
        (AUTO, f"<tool_call>\n{PARIS}\n</tool_call>", True),
        # a call begun must be a valid call; text may not begin like one
        (AUTO, '```json\n{"city": "Paris"}\n```', False),
        (AUTO, '{"name": "send_email", "arguments": {}}', False),
        (AUTO, '{"name": "get_weather", "arguments": {}}', False),
        (AUTO, "[1, 2]", False),
        (AUTO, f"\n{PARIS}", False),
        (REQUIRED, "Sunny.", False),
        (REQUIRED, f"```json\n{PARIS}\n```", True),
        (SINGLE, f"[{PARIS}, {ROME}]", False),
        (SINGLE, PARIS, True),
        # the decision step's second ask: text only, never a call
        (TEXT, "It is sunny and 18 degrees in Paris.", True),
        (TEXT, PARIS, False),
        (TEXT, f"```json\n{PARIS}\n```", False),
        (TEXT, f"<tool_call>\n{PARIS}\n</tool_call>", False),
    ],
)
def test_the_grammar_constrains_every_form_a_call_takes(
    constraint: OutputConstraint, text: str, accepted: bool
) -> None:
    assert _accepts(constraint, text) is accepted


def test_the_tool_choice_hint_goes_into_the_system_message() -> None:
    template = ChatTemplate(None)
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hi"),
    ]
    prompt = template.render(messages, tools=[WEATHER], tool_hint=TOOL_CHOICE_HINT)
    system = prompt.split("<|im_end|>")[0]
    assert system.startswith("<|im_start|>system\nBe brief.")
    assert TOOL_CHOICE_HINT in system
    assert TOOL_CHOICE_HINT not in template.render(messages, tools=[WEATHER])
    # The decision step's second ask offers no tools and still gets its hint.
    assert ANSWER_HINT in template.render(messages, tool_hint=ANSWER_HINT).split("<|im_end|>")[0]


def _turn(*calls: ToolCall, answered: bool = True) -> list[ChatMessage]:
    results = [ChatMessage(role="tool", content="18", tool_call_id=c.id) for c in calls]
    return [
        ChatMessage(role="user", content="Weather in Paris?"),
        ChatMessage(role="assistant", tool_calls=calls),
        *(results if answered else []),
    ]


PARIS_CALL = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')


@pytest.mark.parametrize(
    ("arguments", "name", "repeat"),
    [
        ('{"city": "Paris"}', "get_weather", True),
        ('{"city": " paris"}', "get_weather", True),  # case and edge spaces
        ('{"city": "Paris", "unit": "celsius"}', "get_weather", True),  # an option added
        ("{}", "get_weather", True),  # asks nothing the first call did not
        ('{"city": "Rome"}', "get_weather", False),
        ('{"city": "Paris"}', "calculate_triangle_area", False),
    ],
)
def test_a_repeat_is_the_same_function_agreeing_on_every_shared_argument(
    arguments: str, name: str, repeat: bool
) -> None:
    answered = answered_calls(_turn(PARIS_CALL))
    assert is_repeat(ToolCall(id="call_2", name=name, arguments=arguments), answered) is repeat


def test_only_calls_answered_since_the_last_user_message_count() -> None:
    again = ToolCall(id="call_2", name="get_weather", arguments='{"city": "Paris"}')
    assert answered_calls(_turn(PARIS_CALL)) == (PARIS_CALL,)
    assert answered_calls(_turn(PARIS_CALL, answered=False)) == ()  # no result yet
    later = [*_turn(PARIS_CALL), ChatMessage(role="user", content="Check again.")]
    assert answered_calls(later) == ()
    assert not is_repeat(again, answered_calls(later))
