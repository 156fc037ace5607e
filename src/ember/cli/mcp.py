"""``ember mcp list``, ``ember mcp call`` and ``ember agent``: MCP servers from the terminal.

``mcp list`` and ``mcp call`` reach the servers of ``[mcp.LABEL]`` themselves (a call goes
through the same guard and audit as the server's agent loop); ``ember agent`` runs a task
through a running server's ``/v1/responses`` with the official client, streaming each step
and asking on the terminal when a call needs approval.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ember.act.mcp_client import McpCallError
from ember.act.mcp_servers import ApprovalPolicy, McpServers
from ember.cli.tune import BaseUrl, api_errors, server_client
from ember.core.request_context import Caller
from ember.errors import EmberError
from ember.services.agent import McpToolRequest
from ember.services.container import Services
from ember.settings import load_settings

app = typer.Typer(help="MCP servers: list them and their tools, call a tool.", no_args_is_help=True)


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


@app.command("list")
def list_servers(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each configured server: transport, trust, location, health and tools."""
    settings = load_settings()
    try:
        servers = McpServers(settings.mcp, settings.mcp_server_urls)
    except ValueError as exc:
        _err().print(f"[red]Error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    rows = asyncio.run(_health(servers))
    if as_json:
        _out().print_json(json.dumps(rows))
        return
    if not rows:
        _out().print("No MCP servers are configured ([mcp.LABEL] in ember.toml).")
        return
    table = Table("label", "transport", "trusted", "location", "health", "tools")
    for row in rows:
        table.add_row(
            row["label"],
            row["transport"],
            "yes" if row["trusted"] else "no",
            row["location"],
            "ok" if row["ok"] else f"error: {row['error']}",
            ", ".join(row["tools"]),
        )
    _out().print(table)
    if any(not row["ok"] for row in rows):
        raise typer.Exit(1)


async def _health(servers: McpServers) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label in servers.labels():
        connection = servers.connection(label)
        config = connection.config
        row: dict[str, Any] = {
            "label": label,
            "transport": "stdio" if config.command else "http",
            "trusted": config.trusted,
            "location": config.location,
            "ok": True,
            "error": None,
            "tools": [],
        }
        try:
            row["tools"] = [tool.name for tool in await connection.list_tools()]
        except McpCallError as exc:
            row.update(ok=False, error=exc.message)
        rows.append(row)
    await servers.close()
    return rows


@app.command("call")
def call(
    label: Annotated[str, typer.Argument(help="The server's label ([mcp.LABEL]).")],
    tool: Annotated[str, typer.Argument(help="The tool's name.")],
    arguments: Annotated[
        str, typer.Option("--args", help="The arguments as a JSON object.")
    ] = "{}",
) -> None:
    """Call one tool (guarded and audited as in the agent loop) and print its result."""
    try:
        parsed = json.loads(arguments)
    except ValueError as exc:
        _err().print(f"[red]Error:[/red] --args is not JSON: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if not isinstance(parsed, dict):
        _err().print("[red]Error:[/red] --args must be a JSON object.")
        raise typer.Exit(2)
    services: Services | None = None
    try:
        services = Services.build(load_settings())
        item = asyncio.run(_call(services, label, tool, json.dumps(parsed)))
    except EmberError as exc:
        _err().print(f"[red]Error:[/red] {escape(exc.message)}")
        raise typer.Exit(1) from exc
    finally:
        if services is not None:
            asyncio.run(services.close())
    if item.get("error"):
        _err().print(f"[red]Error:[/red] {escape(json.dumps(item['error'], ensure_ascii=False))}")
        raise typer.Exit(1)
    _out().print(item["output"], markup=False, soft_wrap=True)


async def _call(services: Services, label: str, tool: str, arguments: str) -> dict[str, Any]:
    request = McpToolRequest(
        server_label=label, index=0, echo={}, approval=ApprovalPolicy(default=False)
    )
    try:
        tools = await services.toolbox.resolve([request], None, listed_before=set())
        if tool not in tools.by_name:
            names = ", ".join(sorted(tools.by_name)) or "none"
            raise EmberError(f"Server {label!r} has no tool {tool!r}; its tools: {names}.")
        return await services.toolbox.execute(
            tools,
            tool,
            arguments,
            caller=Caller(tenant="cli"),
            model=services.settings.default_model,
            request_id="cli",
            approved=True,
        )
    finally:
        await services.toolbox.close()


def agent(
    task: Annotated[str, typer.Argument(help="What to do.")],
    mcp: Annotated[
        list[str] | None, typer.Option("--mcp", help="An MCP server label (repeatable).")
    ] = None,
    store: Annotated[
        list[str] | None,
        typer.Option("--store", help="A vector store id for file_search (repeatable)."),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="The model.")] = "default",
    yes: Annotated[bool, typer.Option("--yes", help="Approve every call without asking.")] = False,
    base_url: BaseUrl = None,
) -> None:
    """Run TASK through the server's agent loop, streaming each step."""
    tools: list[dict[str, Any]] = [{"type": "mcp", "server_label": label} for label in mcp or []]
    if store:
        tools.append({"type": "file_search", "vector_store_ids": list(store)})
    with api_errors():
        client = server_client(base_url)
        previous: str | None = None
        pending: list[dict[str, Any]] = [{"role": "user", "content": task}]
        while True:
            kwargs: dict[str, Any] = {"model": model, "input": pending, "stream": True}
            if tools:
                kwargs["tools"] = tools
            if previous:
                kwargs["previous_response_id"] = previous
            approvals = []
            for event in client.responses.create(**kwargs):
                approvals += _show(event)
                if event.type in ("response.completed", "response.incomplete"):
                    previous = event.response.id
            if not approvals:
                _out().print()
                return
            pending = []
            for request in approvals:
                question = f"Run {request.server_label}/{request.name}({request.arguments})?"
                approve = yes or typer.confirm(question, default=False)
                pending.append(
                    {
                        "type": "mcp_approval_response",
                        "approval_request_id": request.id,
                        "approve": approve,
                    }
                )


def _show(event: Any) -> list[Any]:
    """Print one stream event; return the approval requests it carries."""
    out = _out()
    if event.type == "response.output_text.delta":
        out.print(event.delta, end="", markup=False, soft_wrap=True)
    elif event.type == "response.output_item.done":
        item = event.item
        if item.type == "mcp_call":
            result = item.output if item.error is None else f"error: {item.error}"
            out.print(f"\n[bold]{item.server_label}/{item.name}[/bold]({escape(item.arguments)})")
            out.print(f"  -> {escape(str(result))[:500]}")
        elif item.type == "mcp_list_tools":
            names = ", ".join(tool.name for tool in item.tools)
            out.print(f"[dim]{item.server_label}: {names or item.error}[/dim]")
        elif item.type == "file_search_call":
            out.print(f"[dim]file_search: {len(item.results or [])} passages[/dim]")
        elif item.type == "mcp_approval_request":
            return [item]
    elif event.type == "error":
        _err().print(f"[red]Error:[/red] {escape(event.message)}")
        raise typer.Exit(1)
    return []
