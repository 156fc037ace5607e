"""``/v1/conversations`` and the ``conversation`` parameter of ``/v1/responses``, through the
official client against a real server on the ``fake`` engine (no model), and the 400s of
``mcp`` tools that name no configured server or a URL outside the allow-list."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server
from tests.mcp_servers import http_mcp_server, mcp_toml

TOP = """
preload = ["echo"]
n_threads = 1
"""
FAKE_MODEL = """
[models.echo]
path = "echo"
engine = "fake"
context_length = 2048
"""


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with http_mcp_server() as url:
        running = start_server(
            tmp_path_factory.mktemp("conv-home"), mcp_toml(url, top=TOP) + FAKE_MODEL
        )
        yield running
        stop_server(running)


@pytest.fixture(scope="module")
def client(fake_server: RunningServer) -> Iterator[openai.OpenAI]:
    with client_for(fake_server) as client:
        yield client


def test_conversation_crud_and_items(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "first"}],
        metadata={"topic": "tests"},
    )
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "tests"}
    assert client.conversations.retrieve(conversation.id).created_at == conversation.created_at
    updated = client.conversations.update(conversation.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}

    added = client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "message", "role": "assistant", "content": "second"},
            {"type": "message", "role": "user", "content": "third"},
        ],
    )
    assert [item.content[0].text for item in added.data] == ["second", "third"]
    page = client.conversations.items.list(conversation.id, order="asc")
    texts = [item.content[0].text for item in page.data]
    assert texts == ["first", "second", "third"]
    newest_two = client.conversations.items.list(conversation.id, limit=2)
    assert [i.content[0].text for i in newest_two.data] == ["third", "second"]
    assert newest_two.has_more is True
    second = page.data[1]
    assert client.conversations.items.retrieve(second.id, conversation_id=conversation.id).id == (
        second.id
    )
    client.conversations.items.delete(second.id, conversation_id=conversation.id)
    left = client.conversations.items.list(conversation.id, order="asc").data
    assert [item.content[0].text for item in left] == ["first", "third"]
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(second.id, conversation_id=conversation.id)

    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError) as gone:
        client.conversations.retrieve(conversation.id)
    assert gone.value.body["param"] == "conversation_id"  # type: ignore[index]


def _listed(client: openai.OpenAI, **params: Any) -> dict[str, Any]:
    page: dict[str, Any] = client.get(
        "/ember/conversations", cast_to=dict, options={"params": params}
    )
    return page


def test_conversations_are_listed_newest_first_in_pages(client: openai.OpenAI) -> None:
    older = [client.conversations.create(metadata={"title": f"old {i}"}).id for i in range(2)]
    time.sleep(1.1)  # created_at counts seconds: the last one is newer than both
    newest = client.conversations.create(metadata={"title": "newest"}).id
    first = _listed(client, limit=2)
    assert first["object"] == "list" and len(first["data"]) == 2 and first["has_more"] is True
    assert first["data"][0]["id"] == newest and first["data"][0]["metadata"] == {"title": "newest"}
    assert first["first_id"] == newest and first["last_id"] == first["data"][1]["id"]
    seen = [c["id"] for c in first["data"]]
    after = first["last_id"]
    while True:
        page = _listed(client, limit=2, after=after)
        seen += [c["id"] for c in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert len(seen) == len(set(seen)) and set(older) <= set(seen)
    everything = _listed(client, limit=100)["data"]
    assert [c["id"] for c in everything] == seen
    times = [c["created_at"] for c in everything]
    assert times == sorted(times, reverse=True)
    # A deleted conversation leaves the list; a bad limit is a 400 naming it.
    client.conversations.delete(newest)
    assert newest not in [c["id"] for c in _listed(client, limit=100)["data"]]
    with pytest.raises(openai.BadRequestError) as bad:
        _listed(client, limit=0)
    assert bad.value.body["param"] == "limit"  # type: ignore[index]


def test_configured_mcp_servers_are_listed_without_their_secrets(client: openai.OpenAI) -> None:
    listed: dict[str, Any] = client.get("/ember/mcp_servers", cast_to=dict)
    assert [s["server_label"] for s in listed["data"]] == ["local", "web"]
    local, web = listed["data"]
    assert local["transport"] == "stdio" and local["trusted"] is True
    assert local["location"] == "local"
    assert web["transport"] == "streamable_http" and web["trusted"] is False
    assert all(
        set(s) == {"object", "server_label", "description", "transport", "location", "trusted"}
        for s in listed["data"]
    )


def test_responses_continue_a_conversation(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    first = client.responses.create(model="echo", input="apples", conversation=conversation.id)
    assert first.output_text == "You said: apples"
    assert first.conversation is not None and first.conversation.id == conversation.id
    second = client.responses.create(
        model="echo", input="pears", conversation={"id": conversation.id}
    )
    assert second.output_text == "You said: pears"
    items = client.conversations.items.list(conversation.id, order="asc").data
    texts = [item.content[0].text for item in items]
    assert texts == ["apples", "You said: apples", "pears", "You said: pears"]


def test_bad_conversation_references_are_400s_and_404s(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="echo", input="x", conversation="conv_missing")
    assert missing.value.body["param"] == "conversation"  # type: ignore[index]
    stored = client.responses.create(model="echo", input="x")
    conversation = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as both:
        client.responses.create(
            model="echo",
            input="y",
            conversation=conversation.id,
            previous_response_id=stored.id,
        )
    assert both.value.body["param"] == "conversation"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as too_many:
        client.conversations.create(
            items=[{"type": "message", "role": "user", "content": str(i)} for i in range(21)]
        )
    assert too_many.value.body["param"] == "items"  # type: ignore[index]


def test_truncation_auto_drops_the_oldest_items_and_says_so(client: openai.OpenAI) -> None:
    # The fake model reads one token per byte in a 2048-token context: 5 x 600 bytes overflow.
    long_turns = [
        {"type": "message", "role": "user" if i % 2 == 0 else "assistant", "content": f"{i}" * 600}
        for i in range(5)
    ]
    conversation = client.conversations.create(items=long_turns)
    with pytest.raises(openai.BadRequestError) as overflow:
        client.responses.create(model="echo", input="short", conversation=conversation.id)
    assert overflow.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
    answer = client.responses.create(
        model="echo", input="short", conversation=conversation.id, truncation="auto"
    )
    assert answer.output_text == "You said: short" and answer.truncation == "auto"
    dropped = answer.model_dump()["ember"]["truncated_items"]
    assert 1 <= dropped <= 5
    # Nothing stored was lost: the conversation keeps every item, the new turn appended.
    items = client.conversations.items.list(conversation.id, order="asc", limit=100).data
    assert len(items) == 7


def test_mcp_tools_outside_the_configuration_are_400s(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unknown:
        client.responses.create(
            model="echo",
            input="x",
            tools=[{"type": "mcp", "server_label": "nowhere", "require_approval": "never"}],
        )
    assert unknown.value.body["param"] == "tools[0].server_label"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as ssrf:
        client.responses.create(
            model="echo",
            input="x",
            tools=[
                {
                    "type": "mcp",
                    "server_label": "metadata",
                    "server_url": "http://169.254.169.254/latest/meta-data",
                }
            ],
        )
    assert ssrf.value.body["param"] == "tools[0].server_url"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as approval:
        client.responses.create(
            model="echo",
            input=[
                {
                    "type": "mcp_approval_response",
                    "approval_request_id": "mcpr_unknown",
                    "approve": True,
                }
            ],
            tools=[{"type": "mcp", "server_label": "local"}],
        )
    assert approval.value.body["param"] == "input[0].approval_request_id"  # type: ignore[index]
