"""API keys, per-key policy, budgets, rate limits, usage and the cache, through the real server.

One server (with a fake remote provider priced so that every token costs a tenth of a cent)
serves the whole module; tests create their own keys, so they do not share limits.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.conftest import SMALL_MODEL, RunningServer, client_for, start_server, stop_server
from tests.fake_provider import FakeProvider

ADMIN = "admin-secret-for-tests"
_clients: dict[str, openai.OpenAI] = {}
_admins: list[httpx.Client] = []


def client(server: RunningServer, key: str = "not-needed") -> openai.OpenAI:
    """One client per key for the module (closed with the server), so no socket leaks."""
    if key not in _clients:
        _clients[key] = client_for(server, key)
    return _clients[key]


def keys_config(cloud: FakeProvider) -> str:
    return f"""
preload = ["{SMALL_MODEL}"]
n_threads = 2
context_length = 2048
admin_key = "{ADMIN}"

[providers.cloud]
base_url = "{cloud.base_url}"
models = ["gpt-k"]
input_price = 1000.0
output_price = 1000.0
timeout_s = 5.0

[routes.paid]
targets = ["cloud/gpt-k"]

[routes.hybrid]
targets = ["cloud/gpt-h", "local/{SMALL_MODEL}"]

[guard_policies.strict]
pii = "local_only"
"""


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, cloud: FakeProvider, backend: str
) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("keys"), backend + keys_config(cloud))
    yield running
    for opened in [*_clients.values(), *_admins]:
        opened.close()
    _clients.clear()
    _admins.clear()
    stop_server(running)


def admin(server: RunningServer) -> httpx.Client:
    if not _admins:
        _admins.append(
            httpx.Client(
                base_url=server.v1, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
            )
        )
    return _admins[0]


def new_key(server: RunningServer, name: str, **limits: object) -> str:
    response = admin(server).post("/ember/keys", json={"name": name, **limits})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == name and "hash" not in body and "salt" not in body
    key: str = body["key"]
    return key


def ask(key: str, server: RunningServer, model: str = "paid", text: str = "hi", **kw: object):  # type: ignore[no-untyped-def]
    return client(server, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=10, **kw
    )


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EMBER_HOME": str(server.home),
        "EMBER_CONFIG": str(server.home / "ember.toml"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "ember", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_keys_are_required_once_one_exists_and_stored_hashed(server: RunningServer) -> None:
    open_client = client(server)
    assert open_client.models.list().data  # no key exists yet: open, as before
    key = new_key(server, "first")
    with pytest.raises(openai.AuthenticationError) as missing:
        open_client.models.list()
    assert missing.value.code == "invalid_api_key"
    assert client(server, key).models.list().data
    with pytest.raises(openai.AuthenticationError):
        client(server, key[:-1] + ("A" if key[-1] != "A" else "B")).models.list()
    rows = server.sql("SELECT * FROM api_keys")
    [(salt, digest)] = server.sql("SELECT salt, hash FROM api_keys WHERE name = 'first'")
    secret = key.split("-", 3)[3]
    assert not any(secret in str(value) for row in rows for value in row)
    assert hashlib.sha256((salt + secret).encode()).hexdigest() == digest


def test_admin_api_needs_the_admin_key_and_revokes(server: RunningServer) -> None:
    key = new_key(server, "to-revoke")
    anonymous = httpx.post(f"{server.v1}/ember/keys", json={"name": "x"}, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
    as_user = httpx.get(
        f"{server.v1}/ember/keys", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert as_user.status_code == 401
    listed = admin(server).get("/ember/keys").json()["data"]
    assert {"first", "to-revoke"} <= {k["name"] for k in listed}
    assert all("key" not in k and "hash" not in k for k in listed)
    duplicate = admin(server).post("/ember/keys", json={"name": "to-revoke"})
    assert duplicate.status_code == 400
    bad_policy = admin(server).post("/ember/keys", json={"name": "p", "policy": "nope"})
    assert bad_policy.status_code == 400 and bad_policy.json()["error"]["param"] == "policy"
    assert admin(server).delete("/ember/keys/to-revoke").json()["deleted"] is True
    with pytest.raises(openai.AuthenticationError):
        client(server, key).models.list()
    assert admin(server).delete("/ember/keys/to-revoke").status_code == 404


def test_cli_creates_lists_and_revokes(server: RunningServer) -> None:
    created = cli(
        server, "keys", "create", "--name", "cli-key", "--rpm", "100", "--budget-usd", "5"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sk-ember-")
    assert client(server, key).models.list().data  # the running server sees it at once
    listed = cli(server, "keys", "list")
    assert "cli-key" in listed.stdout and key not in listed.stdout
    assert cli(server, "keys", "revoke", "cli-key").returncode == 0
    time.sleep(2.2)  # the server trusts a looked-up key for two seconds
    with pytest.raises(openai.AuthenticationError):
        client(server, key).models.list()
    assert cli(server, "keys", "revoke", "cli-key").returncode == 1


def test_the_static_api_keys_setting_still_works(tmp_path_factory: pytest.TempPathFactory) -> None:
    running = start_server(
        tmp_path_factory.mktemp("static"),
        f'preload = []\napi_keys = ["static-secret"]\n[aliases]\ngpt-4o-mini = "{SMALL_MODEL}"\n',
    )
    try:
        with client_for(running) as anonymous, pytest.raises(openai.AuthenticationError):
            anonymous.models.list()
        with client_for(running, "static-secret") as keyed:
            assert keyed.models.list().data
    finally:
        stop_server(running)


def test_fifty_concurrent_requests_never_exceed_a_budget(
    server: RunningServer, cloud: FakeProvider
) -> None:
    budget = 0.2
    key = new_key(server, "budgeted", budget_usd_day=budget)
    cloud.latency_s = 0.2
    try:

        def one(_: int) -> str:
            try:
                ask(key, server)
                return "ok"
            except openai.RateLimitError as exc:
                return str(exc.code)

        with ThreadPoolExecutor(50) as pool:
            outcomes = list(pool.map(one, range(50)))
    finally:
        cloud.latency_s = 0.0
    assert outcomes.count("ok") >= 5
    assert outcomes.count("insufficient_quota") >= 20
    assert set(outcomes) <= {"ok", "insufficient_quota"}
    rows = admin(server).get("/ember/usage", params={"group_by": "key"}).json()["data"]
    spent = next(r for r in rows if r["key"] == "budgeted")
    assert 0 < spent["cost_usd"] <= budget
    assert spent["requests"] == 50  # the refused ones are logged too, at no cost


def test_requests_per_minute_and_tokens_per_minute(server: RunningServer) -> None:
    key = new_key(server, "rpm", rpm=2)
    ask(key, server)
    ask(key, server)
    with pytest.raises(openai.RateLimitError) as limited:
        ask(key, server)
    assert limited.value.code == "rate_limit_exceeded"
    assert int(limited.value.response.headers["retry-after"]) >= 1
    tpm_key = new_key(server, "tpm", tpm=30)
    ask(tpm_key, server)  # reserves 28 tokens worst case, settles at 10
    with pytest.raises(openai.RateLimitError) as tokens:
        ask(tpm_key, server, text="a much longer prompt than the first one")
    assert tokens.value.code == "rate_limit_exceeded"


def test_key_policy_model_list_and_tenant_in_the_audit_log(
    server: RunningServer, cloud: FakeProvider
) -> None:
    strict = new_key(server, "strict-team", policy="strict")
    cloud.reset()
    raw = ask(strict, server, model="hybrid", text="Nothing personal here")
    assert raw.headers["x-ember-route"].startswith(f"local/{SMALL_MODEL};")
    assert cloud.received == []  # local_only: never remote, with or without PII
    blocker = new_key(server, "blocker", policy="block")
    with pytest.raises(openai.BadRequestError) as blocked:
        ask(blocker, server, model="hybrid", text="Mail me at ada@example.com")
    assert blocked.value.code == "content_policy_violation"
    narrow = new_key(server, "narrow", models=["paid"])
    with pytest.raises(openai.PermissionDeniedError) as denied:
        ask(narrow, server, model="hybrid")
    assert denied.value.code == "model_not_allowed"
    tenants = {row[0] for row in server.sql("SELECT tenant FROM audit_log")}
    assert {"strict-team", "blocker"} <= tenants


def test_usage_is_grouped_and_scoped_to_the_key(server: RunningServer) -> None:
    key = new_key(server, "usage-team")
    ask(key, server)
    ask(key, server, model="hybrid", text="My email is ada@example.com")
    own = httpx.get(
        f"{server.v1}/ember/usage",
        params={"group_by": "key,target,day"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()["data"]
    assert {r["key"] for r in own} == {"usage-team"}
    targets = {r["target"]: r for r in own}
    assert targets["cloud/gpt-k"]["cost_usd"] > 0
    assert targets[f"local/{SMALL_MODEL}"]["cost_usd"] == 0
    everyone = admin(server).get("/ember/usage", params={"group_by": "key"}).json()["data"]
    assert len({r["key"] for r in everyone}) > 1
    bad = admin(server).get("/ember/usage", params={"group_by": "colour"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
    for days in ("1.7976931348623157e+308", "inf", "0"):  # a window no calendar holds
        huge = admin(server).get("/ember/usage", params={"days": days})
        assert huge.status_code == 400, (days, huge.text)
        assert huge.json()["error"]["param"] == "days"
    everything = admin(server).get("/ember/usage", params={"days": 36500, "group_by": ""})
    assert everything.status_code == 200 and everything.json()["data"]
    table = cli(server, "usage", "--group-by", "key,target")
    assert table.returncode == 0 and "usage-team" in table.stdout


def test_exact_cache_per_tenant_with_bypass_and_streamed_replay(
    server: RunningServer, cloud: FakeProvider
) -> None:
    alice, bob = new_key(server, "alice"), new_key(server, "bob")
    cloud.reset()
    first = ask(alice, server, text="cache me", temperature=0)
    assert "x-ember-cache" not in first.headers
    again = ask(alice, server, text="cache me", temperature=0)
    assert again.headers["x-ember-cache"] == "hit"
    assert again.headers["x-ember-route"].startswith("cache;")
    answer = first.parse().choices[0].message.content
    assert again.parse().choices[0].message.content == answer
    assert len(cloud.received) == 1
    streamed = client(server, alice).chat.completions.create(
        model="paid",
        messages=[{"role": "user", "content": "cache me"}],
        max_tokens=10,
        temperature=0,
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == answer
    assert len(cloud.received) == 1
    ask(bob, server, text="cache me", temperature=0)  # another tenant: never shared
    assert len(cloud.received) == 2
    bypass = ask(
        alice, server, text="cache me", temperature=0, extra_headers={"Cache-Control": "no-cache"}
    )
    assert "x-ember-cache" not in bypass.headers
    assert len(cloud.received) == 3
    ask(alice, server, text="cache me", temperature=0.7)  # sampled, not opted in: no cache
    ask(alice, server, text="cache me", temperature=0.7)
    assert len(cloud.received) == 5
    rows = admin(server).get("/ember/usage", params={"group_by": "key"}).json()["data"]
    assert next(r for r in rows if r["key"] == "alice")["cache_hits"] == 2


def test_a_cached_answer_replays_its_original_finish_reason(
    server: RunningServer, cloud: FakeProvider
) -> None:
    key = new_key(server, "carol")
    cloud.reset()

    def truncated(stream: bool = False):  # type: ignore[no-untyped-def]
        return client(server, key).chat.completions.create(
            model="paid",
            messages=[{"role": "user", "content": "cut me short"}],
            max_tokens=2,  # the fake answers with more words: it stops for length
            temperature=0,
            stream=stream,
        )

    first = truncated()
    assert first.choices[0].finish_reason == "length"
    again = truncated()
    assert len(cloud.received) == 1  # a cache hit
    assert again.choices[0].finish_reason == "length"
    assert again.choices[0].message.content == first.choices[0].message.content
    reasons = [c.choices[0].finish_reason for c in truncated(stream=True) if c.choices]
    assert reasons[-1] == "length" and len(cloud.received) == 1
