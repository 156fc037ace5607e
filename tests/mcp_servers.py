"""Helpers of the MCP tests: the server configs of tests/mcp_server.py, and a Streamable HTTP
one running on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_SCRIPT = Path(__file__).resolve().parent / "mcp_server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def http_mcp_server() -> Iterator[str]:
    """Start tests/mcp_server.py over Streamable HTTP; yield its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                raise RuntimeError("the MCP test server exited early")
            time.sleep(0.2)
        else:
            raise RuntimeError("the MCP test server did not start")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


def mcp_toml(http_url: str, *, call_timeout_s: float = 3.0, top: str = "") -> str:
    """``[mcp.*]`` tables: ``local`` (stdio, trusted, local) and ``web`` (HTTP, untrusted,
    remote), and the HTTP server's URL allow-listed; ``top``: other top-level keys (TOML
    wants them before the first table), put first."""
    return f"""{top}
mcp_server_urls = ["{http_url}"]

[mcp.local]
command = "{sys.executable}"
args = ["{SERVER_SCRIPT}", "stdio"]
trusted = true
location = "local"
call_timeout_s = {call_timeout_s}

[mcp.web]
url = "{http_url}"
call_timeout_s = {call_timeout_s}
"""
