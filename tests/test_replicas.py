"""Three Ember replicas on one PostgreSQL behind a real load balancer (HAProxy, Debian's).

Each replica has its own home and shares the database and ``shared_dir``. Through the
balancer: a key's rate limit holds under concurrent load across replicas, the audit chain
stays one chain, what one replica creates the others read; ``/readyz`` and ``/metrics``
name the replica. A fine-tuning job is claimed by exactly one replica, and when that
replica is killed with SIGKILL another takes the job over from its last checkpoint and
finishes it once.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.adapt.test_fine_tuning_api import (
    TINY,
    TRAINING,
    all_events,
    config,
    create,
    jsonl,
    latest_step,
    losses,
    upload,
    wait_for,
    wait_status,
)
from tests.adapt.tiny_llama import build_tiny_llama
from tests.conftest import (
    RunningServer,
    client_for,
    fake_config,
    free_port,
    start_server,
    stop_server,
)
from tests.haproxy import find_haproxy, haproxy_config
from tests.postgres import PostgresServer

ADMIN = "admin-secret-for-replicas"
LEASE_TTL_S = 3


@dataclass
class Cluster:
    replicas: list[RunningServer]
    balancer: str  # the load balancer's base URL
    database: str

    def client(self, key: str = "unused") -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.balancer}/v1", api_key=key, max_retries=0, timeout=120
        )

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.balancer}/v1",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=60,
        )


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[Cluster]:
    haproxy = find_haproxy()
    root = tmp_path_factory.mktemp("replicas")
    name = postgres.create_database()
    url = postgres.url(name)
    tiny = build_tiny_llama(root / "models" / TINY)
    replicas: list[RunningServer] = []
    balancer = None
    try:
        for n in range(1, 4):
            settings = (
                f"database_url = {json.dumps(url)}\n"
                f'shared_dir = "{root / "shared"}"\n'
                f'replica_id = "replica-{n}"\n'
                f"lease_ttl_s = {LEASE_TTL_S}\n"
                f'admin_key = "{ADMIN}"\n'
            )
            # The fake engine (model "echo") and the tiny Llama for fine-tuning.
            tables = config(tiny).split("\n\n", 1)[1]
            replicas.append(start_server(root / f"home-{n}", fake_config(settings) + "\n" + tables))
        port = free_port()
        (root / "haproxy.cfg").write_text(haproxy_config(port, [r.base_url for r in replicas]))
        with (root / "haproxy.log").open("wb") as log:
            balancer = subprocess.Popen(
                [haproxy, "-db", "-f", str(root / "haproxy.cfg")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/readyz"), "the load balancer", timeout=30)
        yield Cluster(replicas, base, url)
    finally:
        if balancer is not None:
            balancer.terminate()
            balancer.wait(timeout=30)
        for replica in replicas:
            if replica.process.poll() is None:
                stop_server(replica)
        postgres.drop_database(name)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_each_replica_is_ready_and_names_itself(cluster: Cluster) -> None:
    for n, replica in enumerate(cluster.replicas, 1):
        ready = httpx.get(f"{replica.base_url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"models": "ok", "database": "ok"}
        metrics = httpx.get(f"{replica.base_url}/metrics", timeout=10).text
        assert f'ember_http_requests_total{{replica="replica-{n}",' in metrics


def test_a_rate_limit_holds_across_replicas_under_load(cluster: Cluster) -> None:
    with cluster.admin() as admin:
        created = admin.post("/ember/keys", json={"name": "burst", "rpm": 12})
    assert created.status_code == 200, created.text
    key = created.json()["key"]

    def ask(n: int) -> int:
        response = httpx.post(
            f"{cluster.balancer}/v1/chat/completions",
            json={"model": "echo", "messages": [{"role": "user", "content": f"hi {n}"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert response.status_code in (200, 429), response.text
        return response.status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(ask, range(60)))
    assert codes.count(200) == 12  # never more than the limit, whichever replica answered
    assert codes.count(429) == 48
    served = {
        line.split('replica="')[1].split('"')[0]
        for replica in cluster.replicas
        for line in httpx.get(f"{replica.base_url}/metrics", timeout=10).text.splitlines()
        if line.startswith("ember_http_requests_total")
        and 'route="/v1/chat/completions"' in line
        and 'status="429"' in line
    }
    assert len(served) == 3  # the balancer spread the load: every replica refused some

    # One audit chain, however many replicas appended to it at once.
    with cluster.admin() as admin:
        verified = admin.get("/ember/audit/verify")
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True


@pytest.fixture(scope="module")
def team_key(cluster: Cluster) -> str:
    """A key without limits (once a key exists, every request needs one)."""
    with cluster.admin() as admin:
        created = admin.post("/ember/keys", json={"name": "team"})
    assert created.status_code == 200, created.text
    return str(created.json()["key"])


def test_what_one_replica_creates_every_replica_reads(cluster: Cluster, team_key: str) -> None:
    first, second, third = (client_for(replica, team_key) for replica in cluster.replicas)
    uploaded = first.files.create(file=("notes.txt", b"shared bytes"), purpose="assistants")
    assert second.files.content(uploaded.id).content == b"shared bytes"
    store = second.vector_stores.create(name="shared")
    assert store.id in [s.id for s in third.vector_stores.list()]
    conversation = third.conversations.create(items=[{"role": "user", "content": "hello"}])
    items = first.conversations.items.list(conversation.id)
    assert [item.content[0].text for item in items.data] == ["hello"]  # type: ignore[union-attr]
    stored = first.responses.create(model="echo", input="remember me", store=True)
    assert third.responses.retrieve(stored.id).output_text == stored.output_text


def test_a_job_moves_to_another_replica_when_its_replica_is_killed(
    cluster: Cluster, team_key: str
) -> None:
    client = cluster.client(team_key)
    job = create(client, upload(client, jsonl(TRAINING)), n_epochs=40, max_steps=160)
    wait_for(lambda: latest_step(client, job.id) >= 10, "training to start")
    holder = _holder(cluster, job.id)
    assert holder is not None
    victim = cluster.replicas[int(holder.rsplit("-", 1)[1]) - 1]
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    victim.log_file.close()

    done = wait_status(client, job.id, "succeeded")
    new_holder = _taker(all_events(client, job.id))
    assert new_holder is not None and new_holder != holder
    steps = losses(client, job.id)
    assert sorted(steps) == list(range(1, 161))  # every step trained, none lost
    messages = [e.message for e in all_events(client, job.id)]
    assert sum(m == "The job has successfully completed" for m in messages) == 1
    assert done.fine_tuned_model and done.trained_tokens


def _holder(cluster: Cluster, job_id: str) -> str | None:
    replica = next(r for r in cluster.replicas if r.process.poll() is None)
    rows = replica.sql(
        "SELECT holder FROM job_leases WHERE kind = 'fine_tuning' AND key = :id", {"id": job_id}
    )
    return str(rows[0][0]) if rows else None


def _taker(events: list[object]) -> str | None:
    for event in events:
        message = str(getattr(event, "message", ""))
        if message.startswith("Replica ") and "takes the job over" in message:
            return message.split()[1]
    return None


def test_an_ingestion_moves_to_another_replica_when_its_replica_is_killed(
    cluster: Cluster, team_key: str
) -> None:
    client = cluster.client(team_key)
    text = "".join(
        f"Ledger entry {i}: the harbour office recorded cargo {i * 7} for vessel {i % 13}. "
        for i in range(2400)
    )
    uploaded = client.files.create(file=("ledger.txt", text.encode()), purpose="assistants")
    store = client.vector_stores.create(name="ledger")
    client.vector_stores.files.create(
        vector_store_id=store.id,
        file_id=uploaded.id,
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0},
        },
    )
    key = f"{store.id}/{uploaded.id}"

    def chunks_written() -> int:
        live = next(r for r in cluster.replicas if r.process.poll() is None)
        rows = live.sql("SELECT COUNT(*) FROM chunks WHERE file_id = :f", {"f": uploaded.id})
        return int(rows[0][0])

    wait_for(lambda: chunks_written() >= 32, "ingestion to write its first chunks")
    live = next(r for r in cluster.replicas if r.process.poll() is None)
    [(holder,)] = live.sql(
        "SELECT holder FROM job_leases WHERE kind = 'ingestion' AND key = :k", {"k": key}
    )
    victim = cluster.replicas[int(str(holder).rsplit("-", 1)[1]) - 1]
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    victim.log_file.close()
    written_when_killed = chunks_written()

    def finished() -> str | None:
        try:
            status = client.vector_stores.files.retrieve(uploaded.id, vector_store_id=store.id)
        except openai.APIConnectionError:  # the balancer has not yet seen the replica go
            return None
        return status.status if status.status != "in_progress" else None

    assert wait_for(finished, "another replica to finish the file") == "completed"
    live = next(r for r in cluster.replicas if r.process.poll() is None)
    [(count, distinct, top)] = live.sql(
        "SELECT COUNT(*), COUNT(DISTINCT position), MAX(position) FROM chunks WHERE file_id = :f",
        {"f": uploaded.id},
    )
    assert count == distinct == top + 1 > written_when_killed  # resumed, nothing twice
    [(vectors,)] = live.sql(
        "SELECT COUNT(*) FROM chunk_vectors_384 v JOIN chunks c ON c.id = v.chunk_id"
        " WHERE c.file_id = :f",
        {"f": uploaded.id},
    )
    assert vectors == count
    assert live.sql("SELECT holder FROM job_leases WHERE key = :k", {"k": key}) == []
