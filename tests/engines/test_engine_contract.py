"""The engine contract: every text engine passes these, with the real SmolLM2-135M-Instruct.

The same tests run against llama.cpp (the GGUF) and transformers (dequantized from the same
GGUF, ~20 s to load on two cores), one engine per parameter for the whole module; every test
asks for a handful of tokens.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ember.core.types import (
    ChatMessage,
    GenerationChunk,
    OutputConstraint,
    SamplingParams,
    ToolSpec,
)
from ember.engines.base import TextEngine, engine_factory
from ember.errors import ContextLengthExceededError, InvalidRequestError
from ember.models.embedded import SMOLLM2_ID, SMOLLM2_TRANSFORMERS_ID, embedded_models
from ember.models.spec import ModelSpec
from ember.settings import Settings

GREEDY = SamplingParams(temperature=0.0, max_tokens=8)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("ember-home"))


@pytest.fixture(scope="module", params=[SMOLLM2_ID, SMOLLM2_TRANSFORMERS_ID])
def engine(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TextEngine]:
    spec: ModelSpec = next(s for s in embedded_models() if s.id == request.param)
    loaded = engine_factory(spec.engine)(spec, settings)
    assert isinstance(loaded, TextEngine)
    yield loaded
    loaded.close()


def chat(engine: TextEngine, text: str, tools: tuple[ToolSpec, ...] = ()) -> list[int]:
    prompt = engine.chat_template.render([ChatMessage(role="user", content=text)], tools=tools)
    return engine.tokenize(prompt)


def run(chunks: Iterator[GenerationChunk]) -> tuple[str, list[GenerationChunk]]:
    collected = list(chunks)
    return "".join(c.text for c in collected), collected


def test_describes_the_model(engine: TextEngine) -> None:
    assert engine.context_length == 8192
    caps = engine.capabilities
    assert caps.chat and caps.streaming and caps.json_schema and caps.tools and caps.logprobs
    # 98 MB of Q4 weights plus an 8k KV cache, or 135M float32 parameters.
    assert 100_000_000 < engine.memory_bytes < 700_000_000
    assert "<|im_start|>assistant\n" in engine.chat_template.render(
        [ChatMessage(role="user", content="Hi")]
    )


def test_tokenize_reads_special_tokens_once(engine: TextEngine) -> None:
    ids = engine.tokenize("<|im_start|>user\nHi<|im_end|>")
    (im_start,) = engine.tokenize("<|im_start|>")
    (im_end,) = engine.tokenize("<|im_end|>")
    assert ids[0] == im_start and ids[-1] == im_end
    assert ids.count(im_start) == 1


def test_greedy_is_deterministic_and_stops_at_end_of_turn(engine: TextEngine) -> None:
    ids = chat(engine, "What is the capital of France? Answer in one word.")
    first, chunks = run(engine.generate(ids, replace(GREEDY, max_tokens=16)))
    second, _ = run(engine.generate(ids, replace(GREEDY, max_tokens=16)))
    assert first == second
    assert "Paris" in first
    assert chunks[-1].finish_reason == "stop"
    assert "<|im_end|>" not in first


def test_same_seed_same_output_other_seeds_differ(engine: TextEngine) -> None:
    ids = chat(engine, "Invent a name for a cat.")
    params = SamplingParams(temperature=1.0, max_tokens=8)
    first, again, other = (run(engine.generate(ids, replace(params, seed=s)))[0] for s in (7, 7, 8))
    assert first == again
    assert other != first


@pytest.fixture(scope="module")
def fruits(engine: TextEngine) -> tuple[list[int], str]:
    """A prompt and its greedy answer."""
    ids = chat(engine, "List three fruits.")
    return ids, run(engine.generate(ids, GREEDY))[0]


@pytest.mark.parametrize(
    "narrowing",
    [{"top_k": 1}, {"top_p": 0.0}, {"min_p": 1.0}],
    ids=["top_k=1", "top_p=0", "min_p=1"],
)
def test_narrowed_sampling_equals_greedy(
    engine: TextEngine, fruits: tuple[list[int], str], narrowing: dict[str, Any]
) -> None:
    ids, greedy = fruits
    sampled, _ = run(
        engine.generate(ids, SamplingParams(temperature=1.0, seed=1, max_tokens=8, **narrowing))
    )
    assert sampled == greedy


@pytest.fixture(scope="module")
def parrot(engine: TextEngine) -> tuple[list[int], str]:
    """A completion prompt that greedy decoding continues verbatim, and that continuation."""
    ids = engine.tokenize("The cat. The cat. The cat. The cat.")
    plain = run(engine.generate(ids, GREEDY))[0]
    assert plain.startswith(" The cat. The cat.")
    return ids, plain


@pytest.mark.parametrize(
    "penalty",
    [{"frequency_penalty": 2.0}, {"presence_penalty": 2.0}, {"repetition_penalty": 1.8}],
    ids=["frequency", "presence", "repetition"],
)
def test_penalties_break_repetition(
    engine: TextEngine, parrot: tuple[list[int], str], penalty: dict[str, Any]
) -> None:
    ids, plain = parrot
    penalised, _ = run(engine.generate(ids, replace(GREEDY, **penalty)))
    assert penalised != plain


def test_max_tokens_ends_with_length(engine: TextEngine) -> None:
    ids = chat(engine, "Write a long story about a dragon.")
    _, chunks = run(engine.generate(ids, replace(GREEDY, max_tokens=5)))
    assert sum(c.tokens for c in chunks) == 5
    assert chunks[-1].finish_reason == "length"
    assert all(c.finish_reason is None for c in chunks[:-1])


def test_logprobs_come_from_the_model_distribution(engine: TextEngine) -> None:
    ids = chat(engine, "Say hello.")
    params = replace(GREEDY, max_tokens=4, logprobs=True, top_logprobs=3)
    _, chunks = run(engine.generate(ids, params))
    tokens = [c for c in chunks if c.tokens]
    assert len(tokens) == 4
    for chunk in tokens:
        (entry,) = chunk.logprobs
        assert entry.logprob <= 0.0
        assert len(entry.top) == 3
        assert [t.logprob for t in entry.top] == sorted(
            (t.logprob for t in entry.top), reverse=True
        )
        # Greedy picks the most likely token.
        assert entry.token == entry.top[0].token
        assert entry.logprob == pytest.approx(entry.top[0].logprob)
        assert bytes(entry.bytes).decode("utf-8", errors="replace") == entry.token


def test_json_schema_output_is_valid(engine: TextEngine) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    ids = chat(engine, "Describe a person as JSON with a name and an age.")
    text, chunks = run(
        engine.generate(
            ids,
            SamplingParams(temperature=0.7, seed=3, max_tokens=80),
            constraint=OutputConstraint(kind="json_schema", schema=schema),
        )
    )
    assert chunks[-1].finish_reason == "stop"
    value = json.loads(text)
    assert set(value) == {"name", "age"}
    assert isinstance(value["name"], str) and len(value["name"]) <= 20
    assert isinstance(value["age"], int) and 0 <= value["age"] <= 150


def test_multibyte_text_streams_without_broken_characters(engine: TextEngine) -> None:
    expected = "北京是中国的首都 😀"
    schema = {"type": "string", "enum": [expected]}
    ids = chat(engine, "Say something.")
    text, chunks = run(
        engine.generate(
            ids, replace(GREEDY, max_tokens=40), constraint=OutputConstraint("json_schema", schema)
        )
    )
    assert json.loads(text) == expected
    assert not any("\ufffd" in c.text for c in chunks)


WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}},
        "required": ["city"],
    },
)
TIME = ToolSpec(
    name="get_time",
    description="Current time in a time zone.",
    parameters={
        "type": "object",
        "properties": {"zone": {"type": "string", "enum": ["UTC", "CET", "JST"]}},
        "required": ["zone"],
    },
)


def test_required_tool_call_matches_a_tool(engine: TextEngine) -> None:
    tools = (WEATHER, TIME)
    ids = chat(engine, "What is the weather in Paris?", tools=tools)
    constraint = OutputConstraint(
        kind="tool_calls", tools=tools, tool_mode="required", parallel=False
    )
    text, chunks = run(engine.generate(ids, replace(GREEDY, max_tokens=80), constraint=constraint))
    assert chunks[-1].finish_reason == "stop"
    # a tagged block, or the bare call object the grammar also allows
    match = re.fullmatch(r"<tool_call>\n(.*)\n</tool_call>\n?", text, flags=re.DOTALL)
    call = json.loads(match.group(1) if match else text)
    assert set(call) == {"name", "arguments"}
    if call["name"] == "get_weather":
        assert isinstance(call["arguments"]["city"], str)
    else:
        assert call["name"] == "get_time"
        assert call["arguments"]["zone"] in {"UTC", "CET", "JST"}


def test_cancel_stops_generation(engine: TextEngine) -> None:
    ids = chat(engine, "Write a long story about a dragon.")
    cancel = threading.Event()
    chunks = []
    for chunk in engine.generate(ids, replace(GREEDY, max_tokens=50), cancel=cancel):
        chunks.append(chunk)
        if len(chunks) == 2:
            cancel.set()
    assert sum(c.tokens for c in chunks) == 2
    assert chunks[-1].finish_reason == "cancelled"


def test_prompt_filling_the_context_is_refused(engine: TextEngine) -> None:
    too_long = [engine.tokenize("hello")[0]] * engine.context_length
    with pytest.raises(ContextLengthExceededError):
        engine.generate(too_long, GREEDY)


def test_empty_prompt_is_refused(engine: TextEngine) -> None:
    with pytest.raises(InvalidRequestError):
        engine.generate([], GREEDY)


def test_unenforceable_schema_is_refused(engine: TextEngine) -> None:
    ids = chat(engine, "Hi")
    bad = OutputConstraint(kind="json_schema", schema={"type": "object", "properties": 5})
    with pytest.raises(InvalidRequestError):
        engine.generate(ids, GREEDY, constraint=bad)
