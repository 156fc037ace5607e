"""The semantic cache through the real server: near-identical prompts share an answer,
different ones and other tenants do not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server
from tests.fake_provider import FakeProvider


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, cloud: FakeProvider
) -> Iterator[RunningServer]:
    config = f"""
preload = ["default-embedding"]
n_threads = 2
api_keys = ["team-key"]

[cache]
semantic = true
semantic_threshold = 0.95

[providers.cloud]
base_url = "{cloud.base_url}"
models = ["gpt-z"]

[routes.chat]
targets = ["cloud/gpt-z"]
"""
    running = start_server(tmp_path_factory.mktemp("semantic"), config)
    yield running
    stop_server(running)


def test_near_identical_prompts_hit_and_different_ones_miss(
    server: RunningServer, cloud: FakeProvider
) -> None:
    with client_for(server, "team-key") as client:

        def ask(text: str, **kw: object):  # type: ignore[no-untyped-def]
            return client.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": text}], **kw
            )

        first = ask("What is the capital city of France?", temperature=0)
        assert "x-ember-cache" not in first.headers
        near = ask("What is the capital city of France ?", temperature=0)
        assert near.headers.get("x-ember-cache") == "hit"
        assert near.parse().choices[0].message.content == first.parse().choices[0].message.content
        assert len(cloud.received) == 1
        other = ask("Write a haiku about the sea in winter.", temperature=0)
        assert "x-ember-cache" not in other.headers
        sampled = ask("What is the capital city of France?!", temperature=0.9)
        assert "x-ember-cache" not in sampled.headers  # sampled and not opted in
        opted = ask(
            "What is the capital city of France?",
            temperature=0.9,
            extra_body={"ember": {"cache": True}},
        )
        assert opted.headers.get("x-ember-cache") == "hit"
        assert len(cloud.received) == 3
