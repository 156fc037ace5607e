"""Continuous batching, prefix cache and backpressure, through the real server and openai client.

One server decodes up to four sequences at once (with a queue of four); a second one allows
a single sequence and no queue, to make over-capacity and slot release easy to observe.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import (
    SERVER_CONFIG,
    RunningServer,
    client_for,
    start_server,
    stop_server,
)

MODEL = "gpt-4o-mini"
BATCH_CONFIG = "max_active_sequences = 4\nmax_queued_requests = 4\n" + SERVER_CONFIG
SINGLE_CONFIG = "max_active_sequences = 1\nmax_queued_requests = 0\n" + SERVER_CONFIG
COUNTING = "Count from 1 to 30, separated by commas."
OTHER_PROMPTS = [
    "Write a poem about the sea.",
    "Explain how a bicycle works.",
    "List ten animals that live in Africa.",
    "Describe the city of Paris in detail.",
    "Tell me a long story about a dragon and a knight.",
]


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ember-batch"), BATCH_CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def single_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ember-single"), SINGLE_CONFIG)
    yield running
    stop_server(running)


def metric(server: RunningServer, name: str, **labels: str) -> float:
    """The value of one sample on /metrics (0 when absent)."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def stream(client: openai.OpenAI, prompt: str, **kwargs: Any) -> dict[str, Any]:
    """One streamed chat; its text, finish reason, usage and per-token logprobs."""
    chunks = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
        **{"temperature": 0, "max_tokens": 12, **kwargs},
    )
    text, finish, usage, logprobs = "", None, None, []
    for chunk in chunks:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            if choice.logprobs and choice.logprobs.content:
                logprobs.extend(entry.logprob for entry in choice.logprobs.content)
    return {"text": text, "finish": finish, "usage": usage, "logprobs": logprobs}


def concurrently(calls: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result(timeout=300) for f in futures]


def test_concurrent_streams_all_complete_with_correct_usage(batch_server: RunningServer) -> None:
    client = client_for(batch_server)
    steps_before = metric(batch_server, "ember_batch_step_sequences_count")
    alone = {p: stream(client, p, max_tokens=1)["usage"].prompt_tokens for p in OTHER_PROMPTS}
    # five streams and a fifth-plus-one: four decode together, the rest wait in the queue
    prompts = [*OTHER_PROMPTS, OTHER_PROMPTS[0]]
    results = concurrently([lambda p=p: stream(client, p, max_tokens=20) for p in prompts])
    for prompt, result in zip(prompts, results, strict=True):
        usage = result["usage"]
        assert usage.prompt_tokens == alone[prompt]
        assert result["finish"] in ("stop", "length")
        if result["finish"] == "length":
            assert usage.completion_tokens == 20
        assert 0 < usage.completion_tokens <= 20
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert result["text"]
    # greedy, same prompt: the two copies of the first prompt agree
    assert results[0]["text"] == results[-1]["text"]
    # the scheduler really put several sequences into one step
    buckets = [
        metric(batch_server, "ember_batch_step_sequences_bucket", le=le) for le in ("1.0", "+Inf")
    ]
    assert buckets[1] > buckets[0], "no step advanced more than one sequence"
    assert metric(batch_server, "ember_batch_step_sequences_count") > steps_before


def test_no_cross_sequence_influence(batch_server: RunningServer) -> None:
    client = client_for(batch_server)
    alone = stream(client, COUNTING, max_tokens=24, logprobs=True)
    others = [lambda p=p: stream(client, p, max_tokens=40) for p in OTHER_PROMPTS[:3]]
    batched = concurrently(
        [lambda: stream(client, COUNTING, max_tokens=24, logprobs=True), *others]
    )
    mine = batched[0]
    assert mine["text"] == alone["text"]
    assert mine["usage"].completion_tokens == alone["usage"].completion_tokens
    # the same distribution up to batch-size rounding in the matmuls (measured: <= 0.11)
    assert mine["logprobs"] == pytest.approx(alone["logprobs"], abs=0.25)
    # and the neighbours wrote about their own subjects
    assert all(r["text"] and "1, 2, 3" not in r["text"] for r in batched[1:])


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_json_schema_request_inside_a_batch_validates(batch_server: RunningServer) -> None:
    client = client_for(batch_server)

    def structured() -> str:
        answer = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Describe a person as JSON."}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": SCHEMA, "strict": True},
            },
            temperature=0.7,
            seed=5,
            max_tokens=80,
        )
        return answer.choices[0].message.content or ""

    results = concurrently(
        [structured, *(lambda p=p: stream(client, p, max_tokens=40) for p in OTHER_PROMPTS[:3])]
    )
    value = json.loads(results[0])
    assert set(value) == {"name", "age"}
    assert isinstance(value["age"], int) and 0 <= value["age"] <= 150
    assert all(r["text"] for r in results[1:])


def test_prefix_cache_hit_is_observable(batch_server: RunningServer) -> None:
    client = client_for(batch_server)
    system = "You are a careful assistant. " + " ".join(
        f"Rule {i}: answer politely and briefly." for i in range(40)
    )
    history = [
        {"role": "system", "content": system},
        {"role": "user", "content": "What is the capital of Italy?"},
    ]
    first = client.chat.completions.create(
        model=MODEL, messages=history, temperature=0, max_tokens=8
    )
    hits = metric(batch_server, "ember_prefix_cache_lookups_total", result="hit")
    reused = metric(batch_server, "ember_prefix_cache_reused_tokens_total")
    history += [
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": "And of Spain?"},
    ]
    second = client.chat.completions.create(
        model=MODEL, messages=history, temperature=0, max_tokens=8
    )
    assert second.usage is not None and first.usage is not None
    assert metric(batch_server, "ember_prefix_cache_lookups_total", result="hit") == hits + 1
    gained = metric(batch_server, "ember_prefix_cache_reused_tokens_total") - reused
    # the whole first turn (system prompt included) was not read again
    assert first.usage.prompt_tokens <= gained < second.usage.prompt_tokens
    assert 0 < metric(batch_server, "ember_prefix_cache_hit_rate") <= 1


def test_metrics_show_the_scheduler(batch_server: RunningServer) -> None:
    text = httpx.get(f"{batch_server.base_url}/metrics", timeout=10).text
    for name in (
        "ember_batch_queue_depth",
        "ember_batch_active_sequences",
        "ember_batch_step_sequences_bucket",
        "ember_batch_decode_tokens_per_second",
        "ember_time_to_first_token_seconds_bucket",
        "ember_prefix_cache_hit_rate",
    ):
        assert re.search(rf"^{name}\{{.*model=\"smollm2-135m-instruct\"", text, re.M), name
    assert metric(batch_server, "ember_batch_generated_tokens_total") > 0


def test_over_capacity_gets_503_and_a_cancelled_stream_frees_its_slot(
    single_server: RunningServer,
) -> None:
    client = client_for(single_server)
    running = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        stream=True,
        max_tokens=1000,
        temperature=0,
    )
    next(iter(running))  # the stream holds the only slot
    with pytest.raises(openai.InternalServerError) as refused:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    assert refused.value.status_code == 503
    assert int(refused.value.response.headers["retry-after"]) >= 1
    error = refused.value.response.json()["error"]
    assert error["code"] == "server_overloaded" and error["type"] == "server_error"
    assert metric(single_server, "ember_batch_active_sequences") == 1

    running.close()  # the client goes away mid-stream
    deadline = time.monotonic() + 30
    while metric(single_server, "ember_batch_active_sequences") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(single_server, "ember_batch_active_sequences") == 0
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert answer.usage is not None and answer.usage.completion_tokens >= 1


def test_streams_over_capacity_get_503_before_the_first_byte(
    single_server: RunningServer,
) -> None:
    """Streams that arrive together, one slot and no queue: each is either served whole or
    refused with a 503, ``Retry-After`` and the OpenAI error shape before its first byte;
    never a 200 whose stream carries a ``server_overloaded`` error event."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": COUNTING}],
        "stream": True,
        "max_tokens": 48,
        "temperature": 0,
    }

    def attempt(_: int) -> tuple[int, dict[str, str], str]:
        url = f"{single_server.v1}/chat/completions"
        with httpx.stream("POST", url, json=body, timeout=180) as response:
            return response.status_code, dict(response.headers), response.read().decode()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    served = [text for status, _, text in results if status == 200]
    refused = [(headers, text) for status, headers, text in results if status == 503]
    assert len(served) + len(refused) == len(results), [status for status, _, _ in results]
    assert served and refused
    for text in served:
        frames = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
        assert frames[-1] == "[DONE]"
        assert not any("error" in json.loads(frame) for frame in frames[:-1]), text
    for headers, text in refused:
        assert int(headers["retry-after"]) >= 1
        error = json.loads(text)["error"]
        assert error["code"] == "server_overloaded" and error["type"] == "server_error"
    # The official client sees the same 503 on a stream while the slot is held.
    client = client_for(single_server)
    running = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        stream=True,
        max_tokens=1000,
        temperature=0,
    )
    next(iter(running))
    with pytest.raises(openai.InternalServerError) as streamed:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, stream=True
        )
    assert streamed.value.status_code == 503
    assert int(streamed.value.response.headers["retry-after"]) >= 1
    running.close()
    deadline = time.monotonic() + 30
    while metric(single_server, "ember_batch_active_sequences") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(single_server, "ember_batch_active_sequences") == 0


def test_shutdown_lets_running_streams_finish(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", "shutdown_timeout_s = 60\n" + SERVER_CONFIG)
    try:
        client = client_for(server)
        chunks = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write a long story about a dragon."}],
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=60,
            temperature=0,
        )
        iterator = iter(chunks)
        next(iterator)
        server.process.send_signal(signal.SIGTERM)
        finish, usage = None, None
        for chunk in iterator:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
        assert finish == "length" and usage is not None and usage.completion_tokens == 60
        # uvicorn re-raises the signal once it has shut down cleanly
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.base_url}/healthz", timeout=2)
    finally:
        if server.process.poll() is None:
            stop_server(server)
        else:
            server.log_file.close()


def test_shutdown_cancels_streams_after_the_timeout(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", "shutdown_timeout_s = 1\n" + SERVER_CONFIG)
    try:
        client = client_for(server)
        # greedy decoding repeats this forever: the stream cannot end on its own in time
        chunks = client.completions.create(
            model=MODEL, prompt="The cat. " * 6, stream=True, max_tokens=1900, temperature=0
        )
        iterator = iter(chunks)
        next(iterator)
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        finish = None
        with pytest.raises((httpx.HTTPError, openai.APIError)):
            for chunk in iterator:
                finish = chunk.choices[0].finish_reason or finish
        assert finish is None
        # uvicorn re-raises the signal once it has shut down cleanly
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
        assert time.monotonic() - began < 20
    finally:
        if server.process.poll() is None:
            stop_server(server)
        else:
            server.log_file.close()


def test_a_full_kv_pool_ends_the_longest_sequence_and_the_others_go_on(tmp_path: Path) -> None:
    # 320 shared cells: each request fits alone, two together overflow the pool mid-generation
    config = SERVER_CONFIG.replace("context_length = 2048", "context_length = 320")
    server = start_server(tmp_path / "home", config)
    try:
        client = client_for(server)
        prompts = ["Write a long story about a dragon.", "Write a long story about a knight."]
        budget = 250
        # a schema whose one string must run past the budget: no answer can end early
        long_text = {
            "type": "json_schema",
            "json_schema": {
                "name": "story",
                "schema": {
                    "type": "object",
                    "properties": {"story": {"type": "string", "minLength": 2000}},
                    "required": ["story"],
                },
            },
        }
        results = concurrently(
            [
                lambda p=p: stream(client, p, max_tokens=budget, response_format=long_text)
                for p in prompts
            ]
        )
        preempted = [
            r for r in results if r["finish"] == "length" and r["usage"].completion_tokens < budget
        ]
        assert len(preempted) == 1, [(r["finish"], r["usage"]) for r in results]
        victim = preempted[0]
        survivor = next(r for r in results if r is not victim)
        # it ended because the pool was full: as the longer of two it held half of it
        held = victim["usage"].prompt_tokens + victim["usage"].completion_tokens
        assert held >= 320 // 2 - 1
        # the survivor kept generating in the cells the victim gave back
        assert survivor["usage"].completion_tokens > victim["usage"].completion_tokens
        assert metric(server, "ember_batch_active_sequences") == 0
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
        assert answer.usage is not None and answer.usage.completion_tokens >= 1
    finally:
        stop_server(server)
