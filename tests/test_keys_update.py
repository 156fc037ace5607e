"""``POST /v1/ember/keys/{key}`` and ``ember keys update``: a key's models, policy, budgets
and rate limits change after creation and the next request obeys them.

One server with the ``fake`` engine (model ``echo``, costs nothing) and a fake remote
provider priced so that every token costs a tenth of a cent (route ``paid``), on each
database backend: the limits live in the shared ledger there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server
from tests.fake_provider import FakeProvider

ADMIN = "admin-secret-for-update-tests"


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, cloud: FakeProvider, backend: str
) -> Iterator[RunningServer]:
    config = f"""{backend}
preload = ["echo"]
n_threads = 1
default_model = "echo"
admin_key = "{ADMIN}"

[models.echo]
path = "echo"
engine = "fake"
context_length = 512

[providers.cloud]
base_url = "{cloud.base_url}"
models = ["gpt-k"]
input_price = 1000.0
output_price = 1000.0
timeout_s = 5.0

[routes.paid]
targets = ["cloud/gpt-k"]

[guard_policies.strict]
pii = "local_only"
"""
    running = start_server(tmp_path_factory.mktemp("keys-update"), config)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.v1, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    ) as client:
        yield client


def new_key(admin: httpx.Client, name: str, **limits: object) -> str:
    response = admin.post("/ember/keys", json={"name": name, **limits})
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


def ask(server: RunningServer, key: str, model: str = "echo") -> str:
    with client_for(server, key) as client:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=10
        )
    return reply.choices[0].message.content or ""


def test_a_cleared_rate_limit_lets_the_next_request_through(
    server: RunningServer, admin: httpx.Client
) -> None:
    key = new_key(admin, "limited", rpm=1)
    ask(server, key)
    with pytest.raises(openai.RateLimitError):
        ask(server, key)
    changed = admin.post("/ember/keys/limited", json={"rpm": None, "tpm": 1000})
    assert changed.status_code == 200, changed.text
    assert changed.json()["rpm"] is None and changed.json()["tpm"] == 1000
    assert ask(server, key).startswith("You said")  # at once: no wait for the key cache
    listed = {k["name"]: k for k in admin.get("/ember/keys").json()["data"]}
    assert listed["limited"]["rpm"] is None and listed["limited"]["tpm"] == 1000


def test_a_budget_set_later_counts_what_was_spent_before(
    server: RunningServer, admin: httpx.Client
) -> None:
    key = new_key(admin, "spender")
    for _ in range(3):  # each costs a few cents at the fake provider's prices
        ask(server, key, model="paid")
    spent = admin.get("/ember/usage", params={"group_by": "key"}).json()["data"]
    cost = next(r for r in spent if r["key"] == "spender")["cost_usd"]
    assert cost > 0
    # Room for one more request (its worst case is about three requests' cost), had the
    # three before not been counted.
    record = admin.post("/ember/keys/spender", json={"budget_usd_day": cost * 1.5}).json()
    assert record["budget_usd_day"] == pytest.approx(cost * 1.5)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(server, key, model="paid")
    assert refused.value.code == "insufficient_quota"
    admin.post("/ember/keys/spender", json={"budget_usd_day": cost * 100})
    assert ask(server, key, model="paid")


def test_the_model_list_and_policy_change(server: RunningServer, admin: httpx.Client) -> None:
    key = new_key(admin, "narrowed")
    key_id = next(
        k["id"] for k in admin.get("/ember/keys").json()["data"] if k["name"] == "narrowed"
    )
    assert ask(server, key)
    by_id = admin.post(f"/ember/keys/{key_id}", json={"models": ["paid"], "policy": "strict"})
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["models"] == ["paid"] and by_id.json()["policy"] == "strict"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        ask(server, key)
    assert denied.value.code == "model_not_allowed"
    cleared = admin.post(f"/ember/keys/{key_id}", json={"models": None, "policy": None}).json()
    assert cleared["models"] is None and cleared["policy"] is None
    assert ask(server, key)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"rpm": -1}, "rpm"),
        ({"budget_usd_month": -0.5}, "budget_usd_month"),
        ({"tpm": "many"}, "tpm"),
        ({"policy": "lenient"}, "policy"),
        ({"name": "someone-else"}, "name"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_an_invalid_update_is_a_400_and_changes_nothing(
    server: RunningServer, admin: httpx.Client, body: dict[str, object], param: str
) -> None:
    name = f"invalid-{param}"
    new_key(admin, name, rpm=7)
    response = admin.post(f"/ember/keys/{name}", json=body)
    assert response.status_code == 400, response.text
    assert param in (response.json()["error"]["param"] or "")
    listed = {k["name"]: k for k in admin.get("/ember/keys").json()["data"]}
    assert listed[name]["rpm"] == 7
    same_name = admin.post(f"/ember/keys/{name}", json={"name": name, "rpm": 8})
    assert same_name.status_code == 200 and same_name.json()["rpm"] == 8


def test_unknown_or_revoked_keys_and_no_admin_key(
    server: RunningServer, admin: httpx.Client
) -> None:
    assert admin.post("/ember/keys/nobody", json={"rpm": 1}).status_code == 404
    new_key(admin, "gone")
    assert admin.delete("/ember/keys/gone").status_code == 200
    revoked = admin.post("/ember/keys/gone", json={"rpm": 1})
    assert revoked.status_code == 404 and revoked.json()["error"]["param"] == "key"
    anonymous = httpx.post(f"{server.v1}/ember/keys/limited", json={"rpm": 1}, timeout=10)
    assert anonymous.status_code == 401


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


def test_cli_updates_and_clears(server: RunningServer, admin: httpx.Client) -> None:
    new_key(admin, "cli-updated", rpm=5, budget_usd_day=1.0)
    done = cli(server, "keys", "update", "cli-updated", "--tpm", "500", "--clear", "rpm")
    assert done.returncode == 0, done.stderr
    listed = {k["name"]: k for k in admin.get("/ember/keys").json()["data"]}
    assert listed["cli-updated"]["tpm"] == 500 and listed["cli-updated"]["rpm"] is None
    assert listed["cli-updated"]["budget_usd_day"] == 1.0
    bad = cli(server, "keys", "update", "cli-updated", "--rpm", "-3")
    assert bad.returncode == 1 and "rpm cannot be negative" in bad.stderr
    assert cli(server, "keys", "update", "cli-updated", "--clear", "colour").returncode == 2
