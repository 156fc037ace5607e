"""Two API keys are two tenants: nothing one creates is visible to or usable by the other.

Each key's name is its tenant. Files, vector stores, stored and background responses and
conversations carry the tenant that created them; the other tenant gets the 404 a missing
resource gets (not a 403: it must not learn that the id exists), lists show each tenant its
own, and the operator (a key of the ``api_keys`` setting) sees every tenant's. Cached answers,
usage and the audit log are not shared either. No model is loaded: the ``fake`` engine
answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import RunningServer, fake_config, start_server, stop_server

ADMIN = "admin-secret-for-tests"
OPERATOR = "operator-key-for-tests"
CONFIG = fake_config(f'admin_key = "{ADMIN}"\napi_keys = ["{OPERATOR}"]')


@dataclass
class Tenants:
    server: RunningServer
    alice: openai.OpenAI
    bob: openai.OpenAI
    operator: openai.OpenAI


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _not_found(attempt: Callable[..., object], *args: object) -> dict[str, object]:
    """The error body of ``attempt(*args)``, which must be a 404."""
    with pytest.raises(openai.NotFoundError) as refused:
        attempt(*args)
    body = refused.value.body
    assert isinstance(body, dict)
    return body


def _client(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    server = start_server(tmp_path_factory.mktemp("tenants-home"), CONFIG)
    keys = {}
    for name in ("alice", "bob"):
        created = httpx.post(
            f"{server.v1}/ember/keys",
            json={"name": name},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        )
        assert created.status_code == 200, created.text
        keys[name] = created.json()["key"]
    yield Tenants(
        server,
        _client(server, keys["alice"]),
        _client(server, keys["bob"]),
        _client(server, OPERATOR),
    )
    stop_server(server)


def test_a_file_is_its_uploaders_alone(tenants: Tenants) -> None:
    mine = tenants.alice.files.create(file=("alice.txt", b"alice's notes"), purpose="assistants")
    assert [f.id for f in tenants.alice.files.list()] == [mine.id]
    assert tenants.alice.files.content(mine.id).content == b"alice's notes"
    assert mine.id not in [f.id for f in tenants.bob.files.list()]
    with pytest.raises(openai.NotFoundError):
        tenants.bob.files.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        tenants.bob.files.content(mine.id)
    with pytest.raises(openai.NotFoundError):
        tenants.bob.files.delete(mine.id)
    # Bob's failed delete removed nothing; the operator sees Alice's file.
    assert tenants.alice.files.retrieve(mine.id).id == mine.id
    assert mine.id in [f.id for f in tenants.operator.files.list()]


def test_a_vector_store_is_its_creators_alone(tenants: Tenants) -> None:
    store = tenants.alice.vector_stores.create(name="alice-docs")
    assert store.id in [s.id for s in tenants.alice.vector_stores.list()]
    assert store.id not in [s.id for s in tenants.bob.vector_stores.list()]
    attempts = [
        lambda: tenants.bob.vector_stores.retrieve(store.id),
        lambda: tenants.bob.vector_stores.update(store.id, name="taken"),
        lambda: tenants.bob.vector_stores.delete(store.id),
        lambda: tenants.bob.vector_stores.search(store.id, query="notes"),
        lambda: tenants.bob.vector_stores.files.list(store.id),
    ]
    for attempt in attempts:
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert tenants.alice.vector_stores.retrieve(store.id).name == "alice-docs"
    assert store.id in [s.id for s in tenants.operator.vector_stores.list()]


def test_no_tenant_can_put_anothers_file_in_its_store(tenants: Tenants) -> None:
    alices = tenants.alice.files.create(file=("a.txt", b"private"), purpose="assistants")
    bobs_store = tenants.bob.vector_stores.create(name="bob-docs")
    with pytest.raises(openai.NotFoundError):
        tenants.bob.vector_stores.files.create(vector_store_id=bobs_store.id, file_id=alices.id)
    with pytest.raises(openai.NotFoundError):
        tenants.bob.vector_stores.file_batches.create(
            vector_store_id=bobs_store.id, file_ids=[alices.id]
        )
    with pytest.raises(openai.NotFoundError):
        tenants.bob.vector_stores.create(name="grab", file_ids=[alices.id])
    assert tenants.bob.vector_stores.files.list(bobs_store.id).data == []


def test_no_tenant_grounds_on_anothers_store(tenants: Tenants) -> None:
    store = tenants.alice.vector_stores.create(name="alice-grounding")
    with pytest.raises(openai.NotFoundError):
        tenants.bob.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "What do the notes say?"}],
            extra_body={"ember": {"vector_store_ids": [store.id]}},
        )
    with pytest.raises(openai.NotFoundError):
        tenants.bob.responses.create(
            model="echo",
            input="What do the notes say?",
            tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
        )


def test_no_tenant_makes_data_from_anothers_documents(tenants: Tenants) -> None:
    alices = tenants.alice.files.create(file=("facts.txt", b"private facts"), purpose="assistants")
    store = tenants.alice.vector_stores.create(name="alice-synth")
    for body in (
        {"model": "echo", "file_ids": [alices.id]},
        {"model": "echo", "vector_store_id": store.id},
    ):
        attempt = httpx.post(
            f"{tenants.server.v1}/ember/synth_jobs",
            json=body,
            headers={"Authorization": f"Bearer {tenants.bob.api_key}"},
            timeout=30,
        )
        assert attempt.status_code == 404, attempt.text
    listed = httpx.get(
        f"{tenants.server.v1}/ember/synth_jobs",
        headers={"Authorization": f"Bearer {tenants.bob.api_key}"},
        timeout=30,
    )
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_no_tenant_trains_on_anothers_file(tenants: Tenants) -> None:
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    line = json.dumps({"messages": turns}).encode() + b"\n"
    alices = tenants.alice.files.create(file=("train.jsonl", line * 12), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError, match="No such file"):
        tenants.bob.fine_tuning.jobs.create(model="smollm2-135m-instruct", training_file=alices.id)
    assert tenants.bob.fine_tuning.jobs.list().data == []


def test_a_fine_tuned_model_is_its_tenants_alone() -> None:
    from ember.core.request_context import ANONYMOUS, Caller
    from ember.models.registry import spec_from_fine_tuning_job
    from ember.store.fine_tuning import JobRecord

    job = JobRecord(
        id="ftjob-1",
        created_at=0,
        status="succeeded",
        requested=None,
        worker_pid=None,
        fine_tuned_model="ft:smollm2:alice:1",
        job={"model": "smollm2-135m-instruct"},
        internal={"base": {"path": "/nowhere"}, "adapter": "/nowhere/adapter"},
        owner="alice",
    )
    spec = spec_from_fine_tuning_job(job)
    assert spec.owner == "alice" and spec.owned_by == "alice"
    assert Caller(tenant="alice").may_see(spec.owner)
    assert not Caller(tenant="bob").may_see(spec.owner)
    assert Caller(tenant="config").may_see(spec.owner) and ANONYMOUS.may_see(spec.owner)


def test_another_tenants_fine_tuned_model_is_not_listed_or_served(tenants: Tenants) -> None:
    listed = {m.id for m in tenants.bob.models.list()}
    assert "echo" in listed  # the operator's models are everyone's
    reply = tenants.bob.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "You said: hi"
    with pytest.raises(openai.NotFoundError):
        tenants.bob.chat.completions.create(
            model="ft:smollm2-135m-instruct:alice:nope",
            messages=[{"role": "user", "content": "hi"}],
        )


def test_a_stored_response_is_its_creators_alone(tenants: Tenants) -> None:
    mine = tenants.alice.responses.create(model="echo", input="alice's question")
    assert tenants.alice.responses.retrieve(mine.id).output_text == "You said: alice's question"
    missing = "resp_" + "0" * 48
    attempts: list[tuple[Callable[[str], object], str]] = [
        (lambda rid: tenants.bob.responses.retrieve(rid), "response_id"),
        (lambda rid: tenants.bob.responses.input_items.list(rid), "response_id"),
        (lambda rid: tenants.bob.responses.delete(rid), "response_id"),
        (lambda rid: tenants.bob.responses.cancel(rid), "response_id"),
        (
            lambda rid: tenants.bob.responses.create(
                model="echo", input="go on", previous_response_id=rid
            ),
            "previous_response_id",
        ),
    ]
    for attempt, param in attempts:
        # Another tenant's response answers exactly as a missing one: nothing leaks.
        refused = _not_found(attempt, mine.id)
        absent = _not_found(attempt, missing)
        assert refused == json.loads(json.dumps(absent).replace(missing, mine.id))
        assert refused["param"] == param and refused["code"] == "not_found"
    # Bob's failed delete removed nothing; the owner and the operator still see it.
    assert tenants.alice.responses.retrieve(mine.id).id == mine.id
    items = tenants.alice.responses.input_items.list(mine.id)
    assert [item.content[0].text for item in items.data] == ["alice's question"]  # type: ignore[union-attr]
    assert tenants.operator.responses.retrieve(mine.id).id == mine.id
    follow = tenants.alice.responses.create(
        model="echo", input="more", previous_response_id=mine.id
    )
    assert follow.previous_response_id == mine.id
    tenants.alice.responses.delete(mine.id)
    _not_found(lambda: tenants.alice.responses.retrieve(mine.id))


def test_a_background_response_is_its_creators_alone(tenants: Tenants) -> None:
    started = tenants.alice.responses.create(model="echo", input="in the back", background=True)
    _not_found(lambda: tenants.bob.responses.retrieve(started.id))
    _not_found(lambda: tenants.bob.responses.cancel(started.id))
    deadline = time.monotonic() + 60
    done = tenants.alice.responses.retrieve(started.id)
    while done.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.1)
        done = tenants.alice.responses.retrieve(started.id)
    assert done.status == "completed" and done.output_text == "You said: in the back"
    # Finished (stored again by the loop), it is still Alice's only.
    _not_found(lambda: tenants.bob.responses.retrieve(started.id))
    _not_found(lambda: tenants.bob.responses.cancel(started.id))
    assert tenants.alice.responses.cancel(started.id).status == "completed"
    assert tenants.operator.responses.retrieve(started.id).status == "completed"


def test_a_conversation_is_its_creators_alone(tenants: Tenants) -> None:
    conversation = tenants.alice.conversations.create(
        items=[{"type": "message", "role": "user", "content": "alice's secret"}],
        metadata={"owner": "alice"},
    )
    first = tenants.alice.conversations.items.list(conversation.id).data[0]
    cid = conversation.id
    attempts: list[Callable[[], object]] = [
        lambda: tenants.bob.conversations.retrieve(cid),
        lambda: tenants.bob.conversations.update(cid, metadata={"owner": "bob"}),
        lambda: tenants.bob.conversations.delete(cid),
        lambda: tenants.bob.conversations.items.list(cid),
        lambda: tenants.bob.conversations.items.create(
            cid, items=[{"type": "message", "role": "user", "content": "bob was here"}]
        ),
        lambda: tenants.bob.conversations.items.retrieve(first.id, conversation_id=cid),  # type: ignore[union-attr]
        lambda: tenants.bob.conversations.items.delete(first.id, conversation_id=cid),  # type: ignore[union-attr]
    ]
    for attempt in attempts:
        refused = _not_found(attempt)
        assert refused["param"] == "conversation_id" and cid in str(refused["message"])
    used = _not_found(
        lambda: tenants.bob.responses.create(model="echo", input="tell me", conversation=cid)
    )
    assert used["param"] == "conversation"
    # Nothing Bob tried changed it; Alice continues it, the operator sees it.
    assert tenants.alice.conversations.retrieve(cid).metadata == {"owner": "alice"}
    answer = tenants.alice.responses.create(model="echo", input="and then?", conversation=cid)
    assert answer.output_text == "You said: and then?"
    texts = [
        item.content[0].text  # type: ignore[union-attr]
        for item in tenants.alice.conversations.items.list(cid, order="asc").data
    ]
    assert texts == ["alice's secret", "and then?", "You said: and then?"]
    assert tenants.operator.conversations.retrieve(cid).id == cid
    # Bob's own conversation is his.
    bobs = tenants.bob.conversations.create(metadata={"owner": "bob"})
    assert tenants.bob.conversations.retrieve(bobs.id).metadata == {"owner": "bob"}
    _not_found(lambda: tenants.alice.conversations.retrieve(bobs.id))

    # The list (Ember's extension) is each tenant's own; the operator's holds both.
    def listed(client: openai.OpenAI) -> list[str]:
        page: dict[str, Any] = client.get(
            "/ember/conversations", cast_to=dict, options={"params": {"limit": 100}}
        )
        return [c["id"] for c in page["data"]]

    assert cid in listed(tenants.alice) and bobs.id not in listed(tenants.alice)
    assert bobs.id in listed(tenants.bob) and cid not in listed(tenants.bob)
    assert {cid, bobs.id} <= set(listed(tenants.operator))


def test_no_tenant_is_served_anothers_cached_answer(tenants: Tenants) -> None:
    def ask(client: openai.OpenAI) -> dict[str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="echo",
            messages=[{"role": "user", "content": "the cached question"}],
            temperature=0,
        )
        return dict(raw.headers)

    assert "x-ember-cache" not in ask(tenants.alice)
    assert ask(tenants.alice).get("x-ember-cache") == "hit"  # the cache is on
    assert "x-ember-cache" not in ask(tenants.bob)  # but not across tenants
    assert ask(tenants.bob).get("x-ember-cache") == "hit"


def test_usage_shows_a_tenant_its_own_requests_only(tenants: Tenants) -> None:
    for client in (tenants.alice, tenants.bob):
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "u"}])

    def usage(key: str) -> set[str]:
        got = httpx.get(
            f"{tenants.server.v1}/ember/usage",
            params={"group_by": "key"},
            headers=_headers(key),
            timeout=30,
        )
        assert got.status_code == 200, got.text
        return {row["key"] for row in got.json()["data"]}

    assert usage(tenants.alice.api_key) == {"alice"}
    assert usage(tenants.bob.api_key) == {"bob"}
    assert {"alice", "bob"} <= usage(ADMIN)
    assert {"alice", "bob"} <= usage(OPERATOR)


def test_the_audit_log_is_the_admins_alone(tenants: Tenants) -> None:
    tenants.alice.chat.completions.create(model="echo", messages=[{"role": "user", "content": "a"}])
    for key in (tenants.alice.api_key, tenants.bob.api_key, OPERATOR):
        for path in ("/ember/audit", "/ember/audit/verify"):
            refused = httpx.get(f"{tenants.server.v1}{path}", headers=_headers(key), timeout=30)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["type"] == "invalid_request_error"
    tail = httpx.get(f"{tenants.server.v1}/ember/audit", headers=_headers(ADMIN), timeout=30)
    assert tail.status_code == 200 and tail.json()["data"]


def test_no_tenant_searches_anothers_store_among_other_tools(tenants: Tenants) -> None:
    store = tenants.alice.vector_stores.create(name="alice-agent")
    tools: list[Any] = [
        {"type": "function", "name": "noop", "parameters": {"type": "object", "properties": {}}},
        {"type": "file_search", "vector_store_ids": [store.id]},
    ]
    # With another tool, file_search is a tool of the agent loop, not a grounded answer.
    refused = _not_found(
        lambda: tenants.bob.responses.create(model="echo", input="What are the notes?", tools=tools)
    )
    assert store.id in str(refused["message"])
    # Alice's store passes; the fake model (no tools) is what stops her request.
    with pytest.raises(openai.BadRequestError, match="does not support tools"):
        tenants.alice.responses.create(model="echo", input="What are the notes?", tools=tools)


def test_the_agent_loops_file_search_searches_as_its_caller() -> None:
    from ember.act.mcp_servers import McpServers
    from ember.core.request_context import Caller
    from ember.services.agent import AgentToolbox, AgentTools, FileSearchRequest

    seen: list[Caller] = []

    async def search(store_ids: Any, query: str, *, k: int, caller: Caller) -> list[Any]:
        seen.append(caller)
        return []

    toolbox = AgentToolbox(McpServers({}, []), None, search)  # type: ignore[arg-type]
    tools = AgentTools([], FileSearchRequest(("vs_1",), 5, {}))
    bob = Caller(tenant="bob")
    item = asyncio.run(
        toolbox.execute(
            tools, "file_search", '{"query": "notes"}', caller=bob, model="m", request_id="r"
        )
    )
    assert item["status"] == "completed" and seen == [bob]
