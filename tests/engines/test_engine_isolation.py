"""A native crash in an engine ends only the requests on it (engines run in processes).

The engine's process is killed the way native code dies (SIGSEGV, SIGABRT, the OOM killer's
SIGKILL) in the middle of a stream: the client gets an error frame, the next request is
answered by a restarted engine, the server stays up, and an ingestion running on the
embedding engine meanwhile completes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import (
    SERVER_CONFIG,
    SMALL_MODEL,
    RunningServer,
    client_for,
    start_server,
    stop_server,
)
from tests.ground_docs import write_documents


@pytest.fixture(scope="module")
def crash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("crash-home"), SERVER_CONFIG)
    yield running
    stop_server(running)


def loaded(server: RunningServer) -> dict[str, dict[str, Any]]:
    data = httpx.get(f"{server.v1}/ember/models/loaded", timeout=10).json()["data"]
    return {entry["id"]: entry for entry in data}


def stream_until_killed(client: openai.OpenAI, pid: int, sig: signal.Signals) -> tuple[str, Any]:
    """Stream a long greedy answer, kill the engine after a few chunks; the text and error."""
    text = ""
    stream = client.chat.completions.create(
        model=SMALL_MODEL,
        messages=[{"role": "user", "content": "Tell me a long story about a lighthouse."}],
        max_tokens=400,
        temperature=0,
        stream=True,
    )
    chunks = 0
    try:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
                chunks += 1
                if chunks == 3:
                    os.kill(pid, sig)
    except openai.APIError as exc:
        return text, exc
    return text, None


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT, signal.SIGKILL])
def test_engine_crash_mid_stream_ends_only_that_stream(
    crash_server: RunningServer, sig: signal.Signals
) -> None:
    client = client_for(crash_server)
    before = loaded(crash_server)[SMALL_MODEL]
    assert before["pid"] and before["alive"]

    text, error = stream_until_killed(client, before["pid"], sig)
    assert text, "the stream had started before the crash"
    assert error is not None, "the stream must end with an error frame, not look complete"
    assert error.body["code"] == "engine_crashed"
    assert sig.name in error.message

    assert httpx.get(f"{crash_server.base_url}/healthz", timeout=10).status_code == 200
    reply = client.chat.completions.create(
        model=SMALL_MODEL,
        # A prompt of its own: a repeated greedy prompt would be answered from the cache.
        messages=[{"role": "user", "content": f"Say hello to {sig.name}."}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.choices[0].message.content
    after = loaded(crash_server)[SMALL_MODEL]
    assert after["pid"] != before["pid"] and after["alive"]
    assert after["restarts"] == before["restarts"] + 1
    assert crash_server.process.poll() is None


def test_ingestion_finishes_while_the_chat_engine_crashes(
    crash_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    client = client_for(crash_server)
    # Load the chat engine, then start an ingestion (the embedding engine, its own process).
    client.chat.completions.create(
        model=SMALL_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    paths = write_documents(tmp_path_factory.mktemp("docs"))
    ids = [client.files.create(file=path, purpose="assistants").id for path in paths.values()]
    store = client.vector_stores.create(name="during-a-crash")
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=ids)
    chat_pid = loaded(crash_server)[SMALL_MODEL]["pid"]
    _text, error = stream_until_killed(client, chat_pid, signal.SIGSEGV)
    assert error is not None and error.body["code"] == "engine_crashed"

    done = client.vector_stores.file_batches.poll(
        batch.id, vector_store_id=store.id, poll_interval_ms=200
    )
    assert done.status == "completed"
    assert done.file_counts.completed == len(ids)
    hits = client.vector_stores.search(vector_store_id=store.id, query="refund policy")
    assert hits.data


def test_a_non_streaming_request_gets_a_503_with_retry_after(crash_server: RunningServer) -> None:
    """The crash of a request that has not started streaming is a 503 the client may retry."""
    import threading

    client = client_for(crash_server)
    client.chat.completions.create(  # the engine runs (an earlier test may have killed it)
        model=SMALL_MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=2
    )
    pid = loaded(crash_server)[SMALL_MODEL]["pid"]
    results: list[Any] = []

    def ask() -> None:
        try:
            results.append(
                client.chat.completions.create(
                    model=SMALL_MODEL,
                    messages=[{"role": "user", "content": "Write a long poem about rivers."}],
                    max_tokens=400,
                    temperature=0,
                )
            )
        except openai.APIStatusError as exc:
            results.append(exc)

    worker = threading.Thread(target=ask)
    worker.start()
    # Wait until the engine is decoding the request.
    for _ in range(200):
        metrics = httpx.get(f"{crash_server.base_url}/metrics", timeout=10).text
        if 'ember_batch_active_sequences{model="smollm2-135m-instruct"} 1.0' in metrics:
            break
        threading.Event().wait(0.02)
    os.kill(pid, signal.SIGSEGV)
    worker.join(timeout=120)
    (result,) = results
    assert isinstance(result, openai.APIStatusError)
    assert result.status_code == 503
    assert result.body["code"] == "engine_crashed"  # type: ignore[index]
    assert result.response.headers["retry-after"] == "1"
