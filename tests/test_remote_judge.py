"""The grounded self-check judged by another model: ``ground_judge_model`` names a route to a
remote one (a fake OpenAI-compatible provider on loopback, which returns no usable
log-probabilities, so its yes/no reply decides), through the real server and the official
client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server
from tests.fake_provider import FakeProvider
from tests.ground_docs import write_documents

QUESTION = "龙井茶产于哪里？"


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeProvider]:
    provider = FakeProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, judge: FakeProvider
) -> Iterator[openai.OpenAI]:
    config = f"""
preload = ["default"]
n_threads = 2
context_length = 4096
ground_judge_model = "judge"

[cache]
enabled = false

[providers.judge]
base_url = "{judge.base_url}"
models = ["gpt-judge"]
timeout_s = 10.0
trusted = true  # the judge reads the documents: the guard finds personal data (a place) in them

[routes.judge]
targets = ["judge/gpt-judge"]
"""
    server: RunningServer = start_server(tmp_path_factory.mktemp("ember-judge"), config)
    try:
        with client_for(server) as opened:
            yield opened
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def store(client: openai.OpenAI, tmp_path_factory: pytest.TempPathFactory) -> str:
    paths = write_documents(tmp_path_factory.mktemp("docs"))
    ids = [client.files.create(file=path, purpose="assistants").id for path in paths.values()]
    created = client.vector_stores.create(name="judged", file_ids=ids)
    deadline = time.monotonic() + 300
    while client.vector_stores.retrieve(created.id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    return created.id


def _ask(client: openai.OpenAI, store: str) -> tuple[str, dict[str, Any]]:
    completion = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"ember": {"vector_store_ids": [store], "self_check": True}},
    )
    return completion.choices[0].message.content or "", completion.model_extra["ember"]  # type: ignore[index]


def test_a_remote_judge_decides_the_self_check(
    client: openai.OpenAI, store: str, judge: FakeProvider
) -> None:
    judge.reset()
    judge.reply = "No."
    content, ember = _ask(client, store)
    assert ember["self_check"] == "no" and ember["self_check_score"] == 0.0
    assert ember["abstained"] and ember["abstain_reason"] == "self_check_failed"
    assert content == "根据现有资料无法回答。"
    # The judge was asked once, for one token, about the answer against its cited source.
    (sent,) = judge.received
    assert sent["model"] == "gpt-judge"
    prompt = sent["messages"][-1]["content"]
    assert QUESTION in prompt and "回答：" in prompt and "杭州" in prompt

    judge.reply = "yes"
    content, ember = _ask(client, store)
    assert ember["self_check"] == "yes" and ember["self_check_score"] == 1.0
    assert not ember["abstained"] and "杭州" in content
    assert len(judge.received) == 2
