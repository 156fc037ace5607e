"""MCP tool sources without a model: real servers written with the ``mcp`` SDK (one over
stdio, one over Streamable HTTP on loopback) reached through Ember's toolbox, with the guard
and the audit chain of a real store."""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.act.mcp_client import CONNECTION, TIMEOUT, McpCallError
from ember.act.mcp_servers import ApprovalPolicy, McpServers, ToolFilter
from ember.core.request_context import Caller
from ember.errors import InvalidRequestError
from ember.guard.analyzer import Analyzer
from ember.guard.injection.registry import InjectionScanner
from ember.services.agent import AgentToolbox, McpToolRequest
from ember.services.tool_guard import ToolGuard
from ember.settings import Settings
from ember.store import Store
from tests.mcp_servers import SERVER_SCRIPT, http_mcp_server, mcp_toml

CALLER = Caller(tenant="t1")


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with http_mcp_server() as url:
        yield url


def _settings(tmp_path: Path, http_url: str, call_timeout_s: float = 15.0) -> Settings:
    """Generous timeouts (the machine is shared), except where a test wants one to expire."""
    table = tomllib.loads(mcp_toml(http_url, call_timeout_s=call_timeout_s))
    return Settings(home=tmp_path, **table)


def _toolbox(settings: Settings) -> tuple[AgentToolbox, Store]:
    store = Store(settings.database_path)
    guard = ToolGuard(settings, Analyzer(), InjectionScanner(), store)
    return AgentToolbox(McpServers(settings.mcp, settings.mcp_server_urls), guard, None), store


def _request(label: str, **kwargs: object) -> McpToolRequest:
    return McpToolRequest(server_label=label, index=0, echo={}, **kwargs)  # type: ignore[arg-type]


def test_stdio_and_http_servers_list_and_call(tmp_path: Path, http_url: str) -> None:
    settings = _settings(tmp_path, http_url)
    toolbox, store = _toolbox(settings)

    async def scenario() -> tuple[list[dict], dict, dict]:
        try:
            tools = await toolbox.resolve(
                [
                    _request("local", allowed=ToolFilter(read_only=True)),
                    _request("web", allowed=ToolFilter(tool_names=("add",))),
                ],
                None,
                listed_before=set(),
            )
            local = await toolbox.execute(
                tools, "echo", '{"text": "hi"}', caller=CALLER, model="m", request_id="r1"
            )
            del tools.by_name["add"]  # the local server listed it first; reach the web one
            tools.by_name["add"] = tools.selections[1]
            web = await toolbox.execute(
                tools, "add", '{"a": 2, "b": 40}', caller=CALLER, model="m", request_id="r1"
            )
            return tools.listings, local, web
        finally:
            await toolbox.close()

    listings, local, web = asyncio.run(scenario())
    by_label = {item["server_label"]: item for item in listings}
    # read_only: the tools annotated readOnlyHint (not crash, not record)
    assert {t["name"] for t in by_label["local"]["tools"]} == {"add", "echo", "hang", "read_note"}
    assert [t["name"] for t in by_label["web"]["tools"]] == ["add"]  # allowed_tools
    assert by_label["web"]["tools"][0]["annotations"] == {"readOnlyHint": True}
    # The stdio server is trusted: it runs; its echo proves what arrived.
    assert local["type"] == "mcp_call" and local["output"] == "received: hi"
    assert local["error"] is None and local["status"] == "completed"
    # The HTTP server is not trusted: with no require_approval, approval is asked first.
    assert web["type"] == "mcp_approval_request" and web["name"] == "add"
    records = [r for r in store.tail_audit(10) if r.endpoint == "tool"]
    assert [r.model for r in records] == ["local/echo"]  # the approval request ran nothing
    assert json.loads(records[0].verdicts)["call_id"] == local["id"]
    store.close()


def test_labels_and_urls_outside_the_configuration_are_refused(
    tmp_path: Path, http_url: str
) -> None:
    settings = _settings(tmp_path, http_url)
    servers = McpServers(settings.mcp, settings.mcp_server_urls)
    with pytest.raises(InvalidRequestError) as unknown:
        servers.connection("nope", param="tools[1]")
    assert unknown.value.param == "tools[1].server_label"
    with pytest.raises(InvalidRequestError) as outside:
        servers.connection("x", server_url="http://169.254.169.254/mcp", param="tools[0]")
    assert outside.value.param == "tools[0].server_url"
    # The allow-listed URL opens under any label.
    assert servers.connection("adhoc", server_url=http_url).config.url == http_url
    with pytest.raises(ValueError, match="exactly one"):
        McpServers({"both": settings.mcp["local"].model_copy(update={"url": http_url})}, [])


def test_a_hung_call_times_out_and_a_crashed_server_restarts(tmp_path: Path, http_url: str) -> None:
    settings = _settings(tmp_path, http_url, call_timeout_s=2.0)
    toolbox, store = _toolbox(settings)
    never = ApprovalPolicy(default=False)

    async def scenario() -> list[dict]:
        try:
            tools = await toolbox.resolve(
                [_request("local", approval=never)], None, listed_before=set()
            )
            run = [
                ("hang", "{}"),
                ("add", '{"a": 1, "b": 2}'),  # after the timeout: a fresh process
                ("crash", "{}"),
                ("add", '{"a": 3, "b": 4}'),  # after the crash: restarted
                ("add", '{"a": "x"}'),  # fails the tool's schema: the tool's own error
            ]
            return [
                await toolbox.execute(tools, name, args, caller=CALLER, model="m", request_id="r2")
                for name, args in run
            ]
        finally:
            await toolbox.close()

    slow, first, crash, second, bad = asyncio.run(scenario())
    assert slow["status"] == "failed" and slow["error"]["code"] == TIMEOUT
    assert first["output"] == "3"
    assert crash["status"] == "failed" and crash["error"]["type"] == "mcp_protocol_error"
    assert crash["error"]["code"] == CONNECTION
    assert second["output"] == "7"
    assert bad["status"] == "failed" and bad["output"] is None
    statuses = [r.status for r in store.tail_audit(10) if r.endpoint == "tool"]
    assert statuses == ["error", "ok", "error", "ok", "error"]
    store.close()


def test_injected_results_are_withheld_and_remote_arguments_redacted(
    tmp_path: Path, http_url: str
) -> None:
    settings = _settings(tmp_path, http_url)
    toolbox, store = _toolbox(settings)
    never = ApprovalPolicy(default=False)

    async def scenario() -> tuple[dict, dict, dict]:
        try:
            tools = await toolbox.resolve(
                [_request("local", approval=never), _request("web", approval=never)],
                None,
                listed_before=set(),
            )
            note = await toolbox.execute(
                tools, "read_note", "{}", caller=CALLER, model="m", request_id="r3"
            )
            # ``echo`` is listed by both servers: the first (local) one wins; ``record`` on
            # the remote server is reached by name.
            local = await toolbox.execute(
                tools,
                "echo",
                '{"text": "mail alice.smith@example.com"}',
                caller=CALLER,
                model="m",
                request_id="r3",
            )
            web_tools = await toolbox.resolve(
                [_request("web", approval=never)], None, listed_before=set()
            )
            remote = await toolbox.execute(
                web_tools,
                "echo",
                '{"text": "mail alice.smith@example.com"}',
                caller=CALLER,
                model="m",
                request_id="r3",
            )
            return note, local, remote
        finally:
            await toolbox.close()

    note, local, remote = asyncio.run(scenario())
    assert note["output"] is None and note["error"]["code"] == -32004
    assert "prompt injection" in note["error"]["message"]
    assert local["output"] == "received: mail alice.smith@example.com"  # a local server
    assert "alice.smith@example.com" not in remote["output"]
    assert "alice.smith@example.com" not in remote["arguments"]
    assert "<EMAIL" in remote["output"]
    records = {r.model: json.loads(r.verdicts) for r in store.tail_audit(10)}
    assert records["local/read_note"]["flagged"] is True
    assert records["web/echo"]["pii"] == {"EMAIL": 1}
    store.close()


def test_a_server_that_cannot_start_is_a_listing_error(tmp_path: Path, http_url: str) -> None:
    settings = _settings(tmp_path, http_url)
    broken = settings.mcp["local"].model_copy(
        update={"args": [str(SERVER_SCRIPT.with_name("missing.py")), "stdio"]}
    )
    store = Store(settings.database_path)
    toolbox = AgentToolbox(
        McpServers({"broken": broken}, []),
        ToolGuard(settings, Analyzer(), InjectionScanner(), store),
        None,
    )

    async def scenario() -> dict:
        try:
            tools = await toolbox.resolve([_request("broken")], None, listed_before=set())
            return tools.listings[0]
        finally:
            await toolbox.close()

    listing = asyncio.run(scenario())
    assert listing["tools"] == [] and "broken" in listing["error"]
    store.close()


def test_approval_policies_and_filters() -> None:
    from ember.act.mcp_client import McpToolInfo

    reader = McpToolInfo("read", None, {}, read_only=True)
    writer = McpToolInfo("write", None, {}, read_only=False)
    only_readers = ToolFilter(read_only=True)
    assert only_readers.matches(reader) and not only_readers.matches(writer)
    policy = ApprovalPolicy(default=True, never=ToolFilter(tool_names=("read",)))
    assert not policy.needs_approval(reader) and policy.needs_approval(writer)
    policy = ApprovalPolicy(default=False, always=ToolFilter(read_only=False))
    assert not policy.needs_approval(reader) and policy.needs_approval(writer)
    assert sys.executable  # the stdio servers run on this interpreter
    with pytest.raises(McpCallError):
        raise McpCallError("x")


def test_a_result_too_long_for_the_context_is_cut_and_marked(tmp_path: Path, http_url: str) -> None:
    settings = _settings(tmp_path, http_url).model_copy(update={"mcp_max_result_chars": 200})
    toolbox, store = _toolbox(settings)

    async def scenario() -> dict:
        try:
            tools = await toolbox.resolve([_request("local")], None, listed_before=set())
            text = json.dumps({"text": "word " * 2000})
            return await toolbox.execute(
                tools, "echo", text, caller=CALLER, model="m", request_id="r5"
            )
        finally:
            await toolbox.close()

    call = asyncio.run(scenario())
    assert call["output"].startswith("received: word word")
    head, mark = call["output"].split("\n", 1)
    assert len(head) == 200
    assert mark == "[... cut: the result had more than 200 characters]"
    verdicts = json.loads(next(r for r in store.tail_audit(5) if r.endpoint == "tool").verdicts)
    assert verdicts["truncated"] is True
    store.close()
