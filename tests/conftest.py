"""Shared fixtures: a real Ember server on a free loopback port, driven by the openai client.

The server is started the way a user starts it (``python -m ember serve``) in a subprocess,
with its own ``EMBER_HOME`` holding an ``ember.toml``. Tests use the small SmolLM2 model for
speed (aliased as ``gpt-4o-mini``, a name clients hard-code); the default Qwen model is
exercised by its own tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import openai
import pytest
from sqlalchemy import text

from ember.store import create_store_engine
from tests.postgres import PostgresServer, start_postgres

# The test modules that load no real model: the fast lane (`make test-fast`, pytest -m "not
# model"). Every other module is marked `model`, so a new module is in the full suite only
# until it is listed here.
MODEL_FREE_MODULES = frozenset(
    {
        "tests/act/test_mcp_client.py",
        "tests/act/test_tools.py",
        "tests/adapt/test_auto_and_preferences.py",
        "tests/engines/test_fake_engine.py",
        "tests/guard/test_guard_stage.py",
        "tests/guard/test_injection.py",
        "tests/guard/test_moderation.py",
        "tests/guard/test_name_context.py",
        "tests/guard/test_recognizers.py",
        "tests/guard/test_spacy_ops.py",
        "tests/guard/test_vault.py",
        "tests/guard/test_vault_store.py",
        "tests/route/test_policy.py",
        "tests/route/test_remote.py",
        "tests/route/test_vllm_target.py",
        "tests/test_background_responses.py",
        "tests/test_conversations_api.py",
        "tests/test_database_faults.py",
        "tests/test_db_migrate.py",
        "tests/test_console.py",
        "tests/test_console_chat.py",
        "tests/test_console_jobs.py",
        "tests/test_docs.py",
        "tests/test_document_pii.py",
        "tests/test_doctor.py",
        "tests/test_faults.py",
        "tests/test_fine_tuning_check.py",
        "tests/test_hostile_input.py",
        "tests/test_keys_update.py",
        "tests/test_shared_limits_and_leases.py",
        "tests/test_ground_units.py",
        "tests/test_log_writer.py",
        "tests/test_mcp_cli.py",
        "tests/test_model_pull_api.py",
        "tests/test_plugins.py",
        "tests/test_store_and_registry.py",
        "tests/test_tenant_isolation.py",
        "tests/test_tool_calls.py",
        "tests/test_units.py",
        "tests/test_usage_daily.py",
        "tests/test_vllm_gateway.py",
    }
)
ROOT = Path(__file__).resolve().parents[1]

SMALL_MODEL = "smollm2-135m-instruct"
TEST_THREADS = 2

SERVER_CONFIG = f"""
preload = ["{SMALL_MODEL}"]
n_threads = {TEST_THREADS}
context_length = 2048
max_request_bytes = 1048576

[aliases]
gpt-4o-mini = "{SMALL_MODEL}"
"""


def fake_config(settings: str = "") -> str:
    """An ``ember.toml`` serving the ``fake`` engine as model ``echo`` (no model loaded);
    ``settings``: more top-level settings (before the tables)."""
    return (
        f'preload = ["echo"]\nn_threads = 1\n{settings}\n'
        '[models.echo]\npath = "echo"\nengine = "fake"\ncontext_length = 512\n'
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(ROOT).as_posix() not in MODEL_FREE_MODULES:
            item.add_marker(pytest.mark.model)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sql(self, statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """One SQL statement on the server's own database (its SQLite file or the PostgreSQL
        database its ``ember.toml`` names), committed; the rows it returns."""
        engine = create_store_engine(home_database(self.home))
        try:
            with engine.begin() as conn:
                result = conn.execute(text(statement), params or {})
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()


def home_database(home: Path) -> str:
    """The database of the Ember home ``home``: the PostgreSQL URL its ``ember.toml`` names,
    or its SQLite file."""
    config = home / "ember.toml"
    settings = tomllib.loads(config.read_text()) if config.exists() else {}
    return str(settings.get("database_url") or home / "ember.db")


def start_server(
    home: Path, config: str, *, extra_env: dict[str, str] | None = None
) -> RunningServer:
    home.mkdir(parents=True, exist_ok=True)
    (home / "ember.toml").write_text(config)
    port = free_port()
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
    env.update(extra_env or {})
    log_path = home / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ember", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = RunningServer(f"http://127.0.0.1:{port}", home, process, log_path, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            raise RuntimeError(f"ember serve exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    process.wait()
    log.close()
    raise RuntimeError(f"ember serve did not start in time:\n{server.log()}")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    server.log_file.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ember-home"), SERVER_CONFIG)
    yield running
    stop_server(running)


def client_for(server: RunningServer, api_key: str = "not-needed") -> openai.OpenAI:
    """The official client pointed at ``server``, without retries that would hide errors."""
    return openai.OpenAI(base_url=server.v1, api_key=api_key, max_retries=0, timeout=300)


@pytest.fixture(scope="session")
def client(server: RunningServer) -> openai.OpenAI:
    return client_for(server)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL with pgvector for the session (see tests/postgres.py)."""
    yield from start_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Ember's database, once on each backend: a SQLite file path, or the URL of a fresh
    PostgreSQL database. Tests that take it run on both from the same code."""
    if request.param == "sqlite":
        yield str(tmp_path / "ember.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """For a module's server: the ``ember.toml`` line choosing its database, once for each
    backend (empty: the SQLite file in its home; else a fresh PostgreSQL database). Put it
    before the config's tables."""
    if request.param == "sqlite":
        yield ""
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    try:
        yield f"database_url = {json.dumps(server.url(name))}\n"
    finally:
        server.drop_database(name)
