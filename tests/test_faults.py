"""Faults from outside the server: the database locked by another process, a full disk.

No model is loaded (the ``fake`` engine answers). While another process holds SQLite's write
lock past the connection's busy timeout, a request that must write now is refused with a 503
``database_locked`` and ``Retry-After`` (nothing half-written), and a generation's audit link
and request-log row wait for the lock instead of being dropped: afterwards every record is
there and the audit chain verifies. On a full disk an upload is a 507
``insufficient_storage`` that leaves nothing behind (no row, no partial file), so the next
upload that fits is stored; the disk is a small tmpfs mounted in a mount namespace of the
server's own (``unshare``), so no privilege is needed and nothing outside is touched.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, fake_config, free_port, start_server, stop_server

CONFIG = fake_config()

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("faults-home"), CONFIG)
    yield running
    stop_server(running)


def _count(server: RunningServer, table: str) -> int:
    with sqlite3.connect(server.home / "ember.db", timeout=30) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _assert_audit_verifies(home: Path) -> None:
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
    verified = subprocess.run(
        [sys.executable, "-m", "ember", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_locked_database_refuses_writes_cleanly_and_loses_no_record(
    server: RunningServer,
) -> None:
    chat = {"model": "echo", "messages": [{"role": "user", "content": "still there?"}]}
    assert httpx.post(f"{server.v1}/chat/completions", json=chat, timeout=60).status_code == 200
    logged, audited = _count(server, "request_log"), _count(server, "audit_log")
    stores = len(httpx.get(f"{server.v1}/vector_stores", timeout=30).json()["data"])

    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(server.home / "ember.db"), "9"],
        stdout=subprocess.PIPE,
        text=True,
    ) as locker:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        refused = httpx.post(
            f"{server.v1}/vector_stores", json={"name": "while-locked"}, timeout=60
        )
        answered = httpx.post(f"{server.v1}/chat/completions", json=chat, timeout=60)
        locker.wait(timeout=60)

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "database_locked"
    assert refused.headers["retry-after"] == "2"
    assert answered.status_code == 200, answered.text
    assert answered.json()["choices"][0]["message"]["content"] == "You said: still there?"

    deadline = time.monotonic() + 30
    while _count(server, "request_log") < logged + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _count(server, "request_log") == logged + 1
    assert _count(server, "audit_log") == audited + 1
    _assert_audit_verifies(server.home)
    # The refused store was not created; the next attempt is.
    assert len(httpx.get(f"{server.v1}/vector_stores", timeout=30).json()["data"]) == stores
    again = httpx.post(f"{server.v1}/vector_stores", json={"name": "after"}, timeout=60)
    assert again.status_code == 200, again.text
    assert "Traceback" not in server.log()


def test_a_full_disk_refuses_an_upload_and_keeps_nothing_of_it(tmp_path: Path) -> None:
    home, config = tmp_path / "home", tmp_path / "ember.toml"
    home.mkdir()
    config.write_text(CONFIG)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = (
        f"mount -t tmpfs -o size=4m tmpfs {home} && exec {sys.executable} -m ember serve "
        f"--host 127.0.0.1 --port {port}"
    )
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(config)}
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", serve],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
            too_big = os.urandom(4 * 1024 * 1024)  # more than the disk has left
            refused = httpx.post(
                f"{base}/v1/files",
                files={"file": ("big.bin", too_big)},
                data={"purpose": "assistants"},
                timeout=120,
            )
            assert refused.status_code == 507, refused.text
            assert refused.json()["error"]["code"] == "insufficient_storage"
            assert httpx.get(f"{base}/v1/files", timeout=30).json()["data"] == []
            # Nothing of it stayed on the disk: a file that fits is stored.
            fits = httpx.post(
                f"{base}/v1/files",
                files={"file": ("small.txt", b"x" * 200_000)},
                data={"purpose": "assistants"},
                timeout=120,
            )
            assert fits.status_code == 200, fits.text
            stored = httpx.get(f"{base}/v1/files/{fits.json()['id']}/content", timeout=30)
            assert stored.content == b"x" * 200_000
            chat = {"model": "echo", "messages": [{"role": "user", "content": "full?"}]}
            assert (
                httpx.post(f"{base}/v1/chat/completions", json=chat, timeout=60).status_code == 200
            )
        finally:
            process.terminate()
            process.wait(timeout=60)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_sigkill_under_load_leaves_a_sound_database_and_audit_chain(tmp_path: Path) -> None:
    """SIGKILL while requests stream their audit links and log rows: after a restart the
    database passes ``PRAGMA integrity_check``, the chain verifies, and the server serves."""
    home = tmp_path / "home"
    running = start_server(home, CONFIG)
    chat = {"model": "echo", "messages": [{"role": "user", "content": "load"}]}

    def hammer(_: int) -> int:
        done = 0
        with httpx.Client(base_url=running.v1, timeout=30) as client:
            for _ in range(200):
                try:
                    client.post("/chat/completions", json=chat)
                    done += 1
                except httpx.HTTPError:
                    return done  # the server is gone
        return done

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(hammer, i) for i in range(8)]
        time.sleep(3)
        running.process.kill()  # SIGKILL: no shutdown, no flush
        answered = sum(f.result() for f in futures)
    running.process.wait()
    running.log_file.close()
    assert answered > 0

    with sqlite3.connect(home / "ember.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = start_server(home, CONFIG)
    try:
        assert httpx.post(f"{again.v1}/chat/completions", json=chat, timeout=60).status_code == 200
        _assert_audit_verifies(home)
        assert _count(again, "audit_log") >= 1
    finally:
        stop_server(again)
