"""``POST /v1/ember/models/pull`` against a real server and a real HTTP hub on 127.0.0.1.

The hub (``tests/fake_hub.py``) serves a 3.2 MB GGUF; one test makes it break every answer
after 1 MB and ignore ``Range``, so the pull fails in the middle of the download and the job
says so with the error ``ember models pull`` would print.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server, stop_server
from tests.fake_hub import TINY_BYTES, TINY_FILE, TINY_REPO, TWO_QUANTS_REPO, FakeHub, standard_hub

ADMIN = "pull-admin-secret"
FLAKY_REPO, FLAKY_FILE = "acme/flaky-GGUF", "flaky.Q8_0.gguf"


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[FakeHub]:
    hub = standard_hub()
    hub.add_repo(FLAKY_REPO, {FLAKY_FILE: TINY_BYTES})
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def pull_server(
    tmp_path_factory: pytest.TempPathFactory, fake_hub: FakeHub
) -> Iterator[RunningServer]:
    config = f'preload = []\nadmin_key = "{ADMIN}"\nhub_url = "{fake_hub.url}"\n'
    running = start_server(tmp_path_factory.mktemp("pull-home"), config)
    yield running
    stop_server(running)


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    fake_hub.reset()
    return fake_hub


@pytest.fixture
def admin(pull_server: RunningServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=pull_server.base_url, headers=headers, timeout=30) as client:
        yield client


def wait_for_end(admin: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = admin.get(f"/v1/ember/models/pulls/{job_id}").json()
        if job["status"] != "running":
            return job
        time.sleep(0.2)
    raise AssertionError(f"the pull {job_id} did not end")


def test_pull_runs_as_a_job_and_registers_the_model(
    hub: FakeHub, admin: httpx.Client, pull_server: RunningServer
) -> None:
    started = admin.post("/v1/ember/models/pull", json={"repo": TINY_REPO, "model_id": "tiny-a"})

    assert started.status_code == 202
    job = started.json()
    assert (job["object"], job["status"], job["repo"], job["model"]) == (
        "ember.model_pull",
        "running",
        TINY_REPO,
        "tiny-a",
    )
    assert job["files"] == [{"path": TINY_FILE, "size": len(TINY_BYTES)}]
    assert job["progress"]["total_bytes"] == len(TINY_BYTES)
    done = wait_for_end(admin, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"]["bytes"] == len(TINY_BYTES) and done["error"] is None
    assert done["finished_at"] >= job["created_at"]
    pulled = pull_server.home / "models" / "hub" / "acme--tiny-GGUF" / "main" / TINY_FILE
    assert pulled.read_bytes() == TINY_BYTES
    # Served from now on, and listed with the other pulls.
    models = admin.get("/v1/models").json()["data"]
    assert "tiny-a" in [m["id"] for m in models]
    assert job["id"] in [j["id"] for j in admin.get("/v1/ember/models/pulls").json()["data"]]


def test_a_pull_that_fails_mid_download_says_why(hub: FakeHub, admin: httpx.Client) -> None:
    # Every answer starts again from byte 0 and breaks after 1 MB: no try gets further.
    hub.ignore_range, hub.drop_after, hub.drop_times = True, 1_000_000, None

    job = admin.post("/v1/ember/models/pull", json={"repo": FLAKY_REPO})

    assert job.status_code == 202
    done = wait_for_end(admin, job.json()["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "hub_error"
    assert "kept failing" in done["error"]["message"]
    assert "run the pull again to resume" in done["error"]["message"]
    assert 0 < done["progress"]["bytes"] < len(TINY_BYTES)
    assert done["progress"]["file"] == FLAKY_FILE
    assert "flaky.q8_0" not in [m["id"] for m in admin.get("/v1/models").json()["data"]]


@pytest.mark.parametrize(
    ("body", "status", "param", "says"),
    [
        ({"repo": "acme/no-such-model"}, 404, None, "does not exist on the hub"),
        ({"repo": TINY_REPO, "revision": "v9"}, 404, None, "has no revision 'v9'"),
        ({"repo": "not-a-repo-name"}, 400, "repo", "is not a hub repo name"),
        ({"repo": TWO_QUANTS_REPO}, 400, "files", "has 2 GGUF files"),
        ({"repo": TINY_REPO, "files": ["nope.gguf"]}, 404, None, "has no file nope.gguf"),
        ({"repo": TINY_REPO, "model_id": "has space"}, 400, "model_id", "cannot be a model id"),
        ({"repo": TINY_REPO, "colour": "red"}, 400, "colour", "colour"),
    ],
)
def test_what_cannot_be_pulled_is_refused_before_any_download(
    hub: FakeHub,
    admin: httpx.Client,
    body: dict[str, Any],
    status: int,
    param: str | None,
    says: str,
) -> None:
    response = admin.post("/v1/ember/models/pull", json=body)

    assert response.status_code == status
    error = response.json()["error"]
    assert says in error["message"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert not any("/resolve/" in r.path or r.path.startswith("/cdn/") for r in hub.requests)


def test_pulls_need_the_admin_key(pull_server: RunningServer, admin: httpx.Client) -> None:
    response = httpx.post(f"{pull_server.base_url}/v1/ember/models/pull", json={"repo": TINY_REPO})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Incorrect admin key provided."
    missing = admin.get("/v1/ember/models/pulls/pull-nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No model pull found with id 'pull-nope'."
