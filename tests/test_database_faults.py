"""The database as a fault: a wrong URL stops ``ember serve`` at start with the fix, and a
replica whose PostgreSQL goes away answers 503 in the OpenAI error shape, says so on
``/readyz``, and recovers by itself when the database comes back. No model is loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, fake_config, start_server, stop_server
from tests.postgres import PostgresServer, start_postgres


def serve(home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "ember.toml").write_text(fake_config())
    return subprocess.run(
        [sys.executable, "-m", "ember", "serve", "--port", "0"],
        env={**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://postgres@/ember?host=/nonexistent-socket-dir", "EMBER_DATABASE_URL"),
        ("mysql://root@localhost/ember", "postgresql://"),
    ],
)
def test_a_wrong_database_url_stops_serve_naming_the_fix(
    tmp_path: Path, url: str, says: str
) -> None:
    result = serve(tmp_path / "home", EMBER_DATABASE_URL=url)
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, which it stops and starts."""
    yield from start_postgres()


@pytest.fixture
def replica(tmp_path: Path, own_postgres: PostgresServer) -> Iterator[RunningServer]:
    name = own_postgres.create_database()
    running = start_server(
        tmp_path / "home", fake_config(f'database_url = "{own_postgres.url(name)}"')
    )
    yield running
    stop_server(running)


def wait_until(check: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {seconds} s")


def test_a_replica_rides_out_its_database_going_away(
    replica: RunningServer, own_postgres: PostgresServer
) -> None:
    files = f"{replica.v1}/files"
    uploaded = httpx.post(files, files={"file": ("a.txt", b"kept")}, data={"purpose": "assistants"})
    assert uploaded.status_code == 200, uploaded.text
    assert httpx.get(f"{replica.base_url}/readyz").status_code == 200

    own_postgres.handle.stop()  # type: ignore[attr-defined]
    try:
        down = httpx.get(files, timeout=30)
        assert down.status_code == 503, down.text
        error = down.json()["error"]
        assert error["code"] == "database_unavailable" and error["type"] == "server_error"
        assert down.headers["retry-after"] == "5"
        ready = httpx.get(f"{replica.base_url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unreachable")
        assert httpx.get(f"{replica.base_url}/healthz").status_code == 200  # alive, not ready
    finally:
        own_postgres.handle.start()  # type: ignore[attr-defined]

    wait_until(lambda: httpx.get(f"{replica.base_url}/readyz").status_code == 200)
    listed = httpx.get(files, timeout=30)
    assert listed.status_code == 200, listed.text
    assert [f["id"] for f in listed.json()["data"]] == [uploaded.json()["id"]]
    assert "Traceback" not in replica.log()
