"""``ember mcp list`` and ``ember mcp call`` against real MCP servers (stdio and Streamable
HTTP on loopback), run as a user runs them: ``python -m ember`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.store import Store
from tests.mcp_servers import http_mcp_server, mcp_toml


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with http_mcp_server() as url:
        home = tmp_path_factory.mktemp("mcp-cli-home")
        (home / "ember.toml").write_text(mcp_toml(url, call_timeout_s=15.0))
        yield home


def ember(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
    return subprocess.run(
        [sys.executable, "-m", "ember", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_mcp_list_shows_each_server_its_tools_and_health(home: Path) -> None:
    result = ember(home, "mcp", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["label"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"local", "web"}
    assert rows["local"]["transport"] == "stdio" and rows["local"]["trusted"] is True
    assert rows["web"]["transport"] == "http" and rows["web"]["location"] == "remote"
    for row in rows.values():
        assert row["ok"] is True
        assert {"add", "echo", "hang", "crash", "read_note", "record"} == set(row["tools"])


def test_mcp_call_prints_the_result_and_audits_it(home: Path) -> None:
    result = ember(home, "mcp", "call", "local", "add", "--args", '{"a": 20, "b": 22}')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
    # The remote server gets the email redacted, as in the agent loop.
    result = ember(home, "mcp", "call", "web", "echo", "--args", '{"text": "bob@example.org"}')
    assert result.returncode == 0, result.stderr
    assert "bob@example.org" not in result.stdout and "received: <EMAIL" in result.stdout
    store = Store(home / "ember.db")
    try:
        models = [r.model for r in store.tail_audit(10) if r.endpoint == "tool"]
    finally:
        store.close()
    assert models == ["local/add", "web/echo"]


def test_mcp_call_failures_exit_1_with_the_error(home: Path) -> None:
    crashed = ember(home, "mcp", "call", "local", "crash")
    assert crashed.returncode == 1 and "mcp_protocol_error" in crashed.stderr
    unknown = ember(home, "mcp", "call", "nowhere", "add")
    assert unknown.returncode == 1 and "Unknown MCP server_label" in unknown.stderr
    missing = ember(home, "mcp", "call", "local", "nope")
    assert missing.returncode == 1 and "has no tool" in missing.stderr
    bad = ember(home, "mcp", "call", "local", "add", "--args", "[1]")
    assert bad.returncode == 2
