"""/v1/chat/completions through the real server with the official openai client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import SMALL_MODEL, RunningServer

MODEL = "gpt-4o-mini"  # aliased to SmolLM2 in the test server's ember.toml
HELLO = [{"role": "user", "content": "Say hello to Ada in one short sentence."}]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a timezone.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        },
    },
}


def test_non_streamed_answer_has_text_usage_and_resolved_model(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=24)
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert reply.model == SMALL_MODEL
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 24
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_stream_chunks_add_up_and_usage_comes_last(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=20,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    whole = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=20, temperature=0
    )
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_same_seed_same_output_and_other_seed_differs(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Invent a name for a cat."}],
            max_tokens=16,
            temperature=1.2,
            seed=seed,
        )
        return reply.choices[0].message.content or ""

    first = sample(7)
    assert sample(7) == first
    assert any(sample(seed) != first for seed in (8, 9, 10))


def test_stop_string_cuts_the_answer(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    full = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=40, temperature=0
    )
    text = full.choices[0].message.content or ""
    assert "4" in text, text
    cut = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=40, temperature=0, stop=["4"]
    )
    assert cut.choices[0].message.content == text[: text.index("4")]
    assert cut.choices[0].finish_reason == "stop"


def test_max_tokens_and_max_completion_tokens_bound_the_output(client: openai.OpenAI) -> None:
    a = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3)
    b = client.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=3)
    for reply in (a, b):
        assert reply.usage.completion_tokens == 3  # type: ignore[union-attr]
        assert reply.choices[0].finish_reason == "length"


def test_logprobs_and_top_logprobs(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=5, logprobs=True, top_logprobs=3, temperature=0
    )
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == 5
    for item in content:
        assert item.logprob <= 0
        assert len(item.top_logprobs) == 3
        # greedy: the chosen token is the most likely one
        assert item.logprob == pytest.approx(item.top_logprobs[0].logprob, abs=1e-4)
    assert "".join(i.token for i in content) == reply.choices[0].message.content


@pytest.fixture(scope="module")
def vocab() -> Iterator[Any]:
    """SmolLM2's tokenizer alone (no weights), to name token ids in logit_bias."""
    import llama_cpp

    from ember.models.embedded import embedded_models
    from ember.settings import Settings

    spec = next(m for m in embedded_models() if m.id == SMALL_MODEL)
    llama = llama_cpp.Llama(
        model_path=str(spec.resolve_path(Settings())), vocab_only=True, verbose=False
    )
    yield llama
    llama.close()


@pytest.mark.parametrize(
    ("model", "temperature"),
    [(MODEL, 0.0), (MODEL, 0.7), ("smollm2-135m-instruct-transformers", 0.0)],
)
def test_logit_bias_bans_and_forces_tokens(
    client: openai.OpenAI, vocab: Any, model: str, temperature: float
) -> None:
    """-100 bans a token (the greedy first token is never chosen), +100 all but forces one;
    in both engines."""
    first = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=1, logprobs=True, temperature=0
    )
    token = first.choices[0].logprobs.content[0].token  # type: ignore[index,union-attr]
    ids = vocab.tokenize(token.encode(), add_bos=False, special=False)
    assert len(ids) == 1
    banned = client.chat.completions.create(
        model=model,
        messages=HELLO,
        max_tokens=8,
        logprobs=True,
        temperature=temperature,
        seed=1,
        logit_bias={str(ids[0]): -100},
    )
    tokens = [t.token for t in banned.choices[0].logprobs.content]  # type: ignore[union-attr]
    assert token not in tokens
    forced = client.chat.completions.create(
        model=model,
        messages=HELLO,
        max_tokens=4,
        logprobs=True,
        temperature=temperature,
        seed=1,
        logit_bias={str(ids[0]): 100},
    )
    assert [t.token for t in forced.choices[0].logprobs.content] == [token] * 4  # type: ignore[union-attr]


@pytest.mark.parametrize("bias", [{"hello": 5}, {"42": 101}, {"42": -100.5}, {"99999999": 1}])
def test_bad_logit_bias_is_a_400(client: openai.OpenAI, bias: dict[str, float]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=HELLO,
            max_tokens=2,
            logit_bias=bias,  # type: ignore[arg-type]
        )
    assert caught.value.body["param"] == "logit_bias"  # type: ignore[index]


def test_n_choices_are_independent(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=8, n=2, seed=3, temperature=1.0
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(c.message.content for c in reply.choices)


def test_penalties_are_accepted(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=8,
        presence_penalty=1.5,
        frequency_penalty=1.0,
        top_p=0.9,
    )
    assert reply.choices[0].message.content


def test_json_schema_output_is_valid_by_construction(client: openai.OpenAI) -> None:
    # Sampled, so the grammar is bounded: every string has a maximum length and max_tokens
    # leaves room for the longest document it allows (a sampled string once ran past 120
    # tokens and the JSON was cut).
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "hobbies": {
                "type": "array",
                "items": {"type": "string", "maxLength": 24},
                "maxItems": 3,
            },
        },
        "required": ["name", "age", "hobbies"],
        "additionalProperties": False,
    }
    for seed in (1, 2, 3):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Describe a person."}],
            max_tokens=400,
            seed=seed,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": schema, "strict": True},
            },
        )
        assert reply.choices[0].finish_reason == "stop"
        data = json.loads(reply.choices[0].message.content or "")
        assert set(data) == {"name", "age", "hobbies"}
        assert isinstance(data["age"], int) and 0 <= data["age"] <= 150
        assert isinstance(data["hobbies"], list) and len(data["hobbies"]) <= 3


def test_json_object_mode(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": 'Reply with a JSON object with the keys "city" and "country" for Paris.',
            }
        ],
        max_tokens=100,
        temperature=0,
        response_format={"type": "json_object"},
    )
    assert reply.choices[0].finish_reason == "stop"
    assert json.loads(reply.choices[0].message.content or "")["country"] == "France"


def test_required_tool_call_is_valid_and_a_tool_turn_follows(client: openai.OpenAI) -> None:
    messages: list[dict] = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0,  # sampled arguments can run past max_tokens (no tool call then)
        max_tokens=80,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert set(args) == {"city", "unit"} and args["unit"] in ("celsius", "fahrenheit")
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'})
    follow = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="none",
        max_tokens=30,
    )
    assert follow.choices[0].message.content
    assert follow.choices[0].message.tool_calls is None


def test_named_tool_choice_forces_that_function(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the weather in Rome?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False,
        temperature=0,  # sampled arguments can run past max_tokens (no tool call then)
        max_tokens=60,
    )
    calls = reply.choices[0].message.tool_calls
    assert calls and all(c.function.name == "get_time" for c in calls)  # type: ignore[union-attr]
    assert "timezone" in json.loads(calls[0].function.arguments)  # type: ignore[union-attr]


def test_streamed_tool_call_deltas_reassemble(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Oslo, in celsius?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0,  # sampled arguments can run past max_tokens (no tool call then)
        max_tokens=80,
        stream=True,
    )
    name, arguments, call_id, finish = "", "", None, None
    for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            call_id = delta.id or call_id
            if delta.function:
                name += delta.function.name or ""
                arguments += delta.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert call_id and call_id.startswith("call_")
    assert name == "get_weather"
    assert "city" in json.loads(arguments)
    assert finish == "tool_calls"


def test_auto_tool_choice_returns_text_or_valid_calls(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a joke about cats."}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        max_tokens=40,
    )
    message = reply.choices[0].message
    if message.tool_calls:
        for call in message.tool_calls:
            assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    else:
        assert message.content and not message.content.lstrip().startswith("<tool_call>")


def _metric_total(http: httpx.Client, server: RunningServer, name: str) -> float:
    """The sum of a Prometheus metric's samples over its labels."""
    text = http.get(f"{server.base_url}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )


def test_client_disconnect_cancels_generation(server: RunningServer) -> None:
    """Closing a stream mid-way ends its generation at once: it leaves the batch with a few
    tokens generated, not the 1500 it asked for (counted, so machine load cannot fool it)."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
        "max_tokens": 1500,
        "stream": True,
    }
    with httpx.Client(timeout=60) as http:
        before = _metric_total(http, server, "ember_batch_generated_tokens_total")
        requests = _metric_total(http, server, "ember_generation_requests_total")
        with http.stream("POST", f"{server.v1}/chat/completions", json=body) as response:
            lines = 0
            for line in response.iter_lines():
                lines += line.startswith("data:")
                if lines >= 3:
                    break
        # The handler records the request when it sees the disconnect; the scheduler drops the
        # sequence at its next step. Wait for both, then count what the scheduler sampled.
        deadline = time.monotonic() + 120
        while (
            _metric_total(http, server, "ember_generation_requests_total") <= requests
            or _metric_total(http, server, "ember_batch_active_sequences") > 0
        ):
            assert time.monotonic() < deadline, "the abandoned request never left the batch"
            time.sleep(0.2)
        generated = _metric_total(http, server, "ember_batch_generated_tokens_total") - before
        reply = http.post(
            f"{server.v1}/chat/completions",
            json={"model": MODEL, "messages": HELLO, "max_tokens": 4},
        )
    assert reply.status_code == 200
    assert 0 < generated < 300, f"the abandoned stream generated {generated:.0f} tokens"


def test_transformers_engine_serves_the_same_api(client: openai.OpenAI) -> None:
    """The second engine behind the same endpoint: text, streaming and a valid tool call."""
    model = "smollm2-135m-instruct-transformers"
    reply = client.chat.completions.create(model=model, messages=HELLO, max_tokens=8, temperature=0)
    assert reply.model == model and reply.choices[0].message.content
    assert reply.system_fingerprint == "ember-transformers"
    stream = client.chat.completions.create(
        model=model, messages=HELLO, max_tokens=8, temperature=0, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        reply.choices[0].message.content
    )
    called = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0,  # sampled arguments can run past max_tokens (no tool call then)
        max_tokens=60,
    )
    call = called.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert set(json.loads(call.function.arguments)) == {"city", "unit"}  # type: ignore[union-attr]
