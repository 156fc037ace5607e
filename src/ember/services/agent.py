"""Server-side tools of one response: MCP servers and ``file_search``, run by Ember.

:class:`AgentToolbox` (one per process) resolves a request's ``mcp`` tools against the
configured servers (:mod:`ember.act.mcp_servers`) into :class:`AgentTools` (one per
response): the tool specs the model sees, the ``mcp_list_tools`` items, and :meth:`execute`,
which runs one call through the guard (:mod:`ember.services.tool_guard`) and returns its
output item (``mcp_call``, or ``file_search_call``). A failure of a server, a timeout or a
refused argument is an item with ``error``, never an exception. The loop that alternates
model steps and calls is :meth:`ember.services.responses.ResponseService.run`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ember.act.file_search import FileSearchTool
from ember.act.mcp_client import McpCallError, McpToolInfo
from ember.act.mcp_servers import ApprovalPolicy, McpSelection, McpServers, ToolFilter
from ember.act.tools import Passage, ToolContext
from ember.core.request_context import ANONYMOUS, Caller
from ember.core.types import ToolSpec
from ember.errors import EmberError, InvalidRequestError
from ember.services.tool_guard import ArgumentsRefused, ToolGuard

Item = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


class TenantSearch(Protocol):
    """Searches vector stores as ``caller`` may: another tenant's store is a 404
    (``VectorStoreService.retrieve`` is one)."""

    async def __call__(
        self, store_ids: Sequence[str], query: str, *, k: int, caller: Caller
    ) -> Sequence[Passage]: ...


@dataclass(frozen=True)
class McpToolRequest:
    """A request's ``{"type": "mcp", ...}`` tool in domain terms; ``echo`` is its wire dict."""

    server_label: str
    index: int
    echo: Item
    server_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    allowed: ToolFilter | None = None
    approval: ApprovalPolicy | None = None  # None: `always` unless the server is trusted


@dataclass(frozen=True)
class FileSearchRequest:
    """A ``file_search`` tool among others (alone, it is a grounded answer instead)."""

    vector_store_ids: tuple[str, ...]
    max_num_results: int
    echo: Item


@dataclass
class AgentTools:
    """The server-side tools of one response."""

    selections: list[McpSelection]
    file_search: FileSearchRequest | None = None
    by_name: dict[str, McpSelection] = field(default_factory=dict)
    listings: list[Item] = field(default_factory=list)

    def specs(self) -> tuple[ToolSpec, ...]:
        specs = [
            ToolSpec(
                name=tool.name,
                description=tool.description,
                parameters=tool.input_schema,
                strict=True,
            )
            for name, selection in self.by_name.items()
            if (tool := selection.tool(name)) is not None
        ]
        if self.file_search is not None:
            fs = FileSearchTool()
            specs.append(
                ToolSpec(name=fs.name, description=fs.description, parameters=fs.parameters)
            )
        return tuple(specs)

    def handles(self, name: str) -> bool:
        return name in self.by_name or (self.file_search is not None and name == "file_search")

    def selection(self, label: str) -> McpSelection | None:
        return next((s for s in self.selections if s.label == label), None)


class AgentToolbox:
    """Resolves and runs server-side tools; shared by every response of the process."""

    def __init__(
        self,
        servers: McpServers,
        guard: ToolGuard,
        search: TenantSearch | None,
        *,
        check_store: Callable[[str, Caller], object] | None = None,
    ) -> None:
        self.servers = servers
        self.guard = guard
        self.search = search
        # Raises the 404 of a vector store ``caller`` may not see (or that does not exist).
        self.check_store = check_store

    async def resolve(
        self,
        requests: Sequence[McpToolRequest],
        file_search: FileSearchRequest | None,
        *,
        listed_before: set[str],
        caller: Caller = ANONYMOUS,
    ) -> AgentTools:
        """Connect to each server and list its tools (cached); unknown labels are 400s, and
        so is a ``file_search`` vector store ``caller`` may not see a 404.

        A server that cannot list its tools gives an ``mcp_list_tools`` item with ``error``
        and no tools. ``listed_before``: labels already listed in the conversation, which
        get no new listing item.
        """
        if file_search is not None and self.check_store is not None:
            for store_id in file_search.vector_store_ids:
                self.check_store(store_id, caller)
        selections: list[McpSelection] = []
        for request in requests:
            param = f"tools[{request.index}]"
            if any(s.label == request.server_label for s in selections):
                raise InvalidRequestError(
                    f"server_label {request.server_label!r} appears twice.",
                    param=f"{param}.server_label",
                )
            connection = self.servers.connection(
                request.server_label,
                server_url=request.server_url,
                headers=request.headers,
                param=param,
            )
            approval = request.approval or ApprovalPolicy(default=not connection.config.trusted)
            selections.append(
                McpSelection(request.server_label, connection, request.allowed, approval)
            )
        tools = AgentTools(selections, file_search)
        for selection in selections:
            item: Item = {
                "id": new_id("mcpl"),
                "type": "mcp_list_tools",
                "server_label": selection.label,
                "tools": [],
                "error": None,
            }
            try:
                listed: list[McpToolInfo] = await selection.connection.list_tools()
            except McpCallError as exc:
                item["error"] = exc.message
                listed = []
            selection.tools = selection.visible(listed)
            item["tools"] = [tool.listed() for tool in selection.tools]
            for tool in selection.tools:
                tools.by_name.setdefault(tool.name, selection)
            if selection.label not in listed_before or item["error"]:
                tools.listings.append(item)
        return tools

    async def execute(
        self,
        tools: AgentTools,
        name: str,
        arguments: str,
        *,
        caller: Caller,
        model: str,
        request_id: str,
        approval_request_id: str | None = None,
        approved: bool = False,
    ) -> Item:
        """Run one call (unless it needs approval first: then an approval request)."""
        if name == "file_search" and tools.file_search is not None:
            return await self._file_search(tools.file_search, arguments, caller, request_id)
        selection = tools.by_name[name]
        tool = selection.tool(name)
        assert tool is not None
        if not approved and selection.approval.needs_approval(tool):
            return {
                "id": new_id("mcpr"),
                "type": "mcp_approval_request",
                "server_label": selection.label,
                "name": name,
                "arguments": arguments,
            }
        item: Item = {
            "id": new_id("mcp"),
            "type": "mcp_call",
            "server_label": selection.label,
            "name": name,
            "arguments": arguments,
            "output": None,
            "error": None,
            "status": "completed",
            "approval_request_id": approval_request_id,
        }
        verdicts: dict[str, Any] = {"location": selection.connection.config.location}
        try:
            parsed = json.loads(arguments or "{}")
            if not isinstance(parsed, dict):
                raise ValueError("arguments are not a JSON object")
        except ValueError as exc:
            return self._failed(item, -32602, f"The arguments are not a JSON object: {exc}")
        try:
            sent, pii = await self.guard.arguments(parsed, remote=selection.remote, model=model)
        except ArgumentsRefused as exc:
            verdicts["refused"] = True
            failed = self._failed(item, -32003, str(exc))
            self._audit(item, caller, request_id, "refused", verdicts)
            return failed
        if pii:
            verdicts["pii"] = pii
            item["arguments"] = json.dumps(sent, ensure_ascii=False)
        try:
            result = await selection.connection.call_tool(name, sent)
        except McpCallError as exc:
            self._failed(item, exc.code, exc.message)
            self._audit(item, caller, request_id, "error", verdicts)
            return item
        checked = await self.guard.result(result.text, model=model)
        verdicts.update(checked.verdicts, truncated=checked.truncated)
        if result.is_error:
            item["error"] = {
                "type": "mcp_tool_execution_error",
                "content": [{"type": "text", "text": checked.text}],
            }
            item["status"] = "failed"
        elif checked.withheld:
            self._failed(
                item,
                -32004,
                f"The result was withheld: it looks like a prompt injection "
                f"(score {checked.score:.2f}).",
            )
        else:
            item["output"] = checked.text
        self._audit(item, caller, request_id, "ok" if not item["error"] else "error", verdicts)
        return item

    async def _file_search(
        self, request: FileSearchRequest, arguments: str, caller: Caller, request_id: str
    ) -> Item:
        item: Item = {
            "id": new_id("fs"),
            "type": "file_search_call",
            "status": "completed",
            "queries": [],
            "results": None,
        }
        try:
            parsed = json.loads(arguments or "{}")
            query = str(parsed.get("query", "")) if isinstance(parsed, dict) else ""
            item["queries"] = [query]
            search = self.search

            async def as_caller(
                store_ids: Sequence[str], query: str, *, k: int
            ) -> Sequence[Passage]:
                assert search is not None
                return await search(store_ids, query, k=k, caller=caller)

            context = ToolContext(
                vector_store_ids=request.vector_store_ids,
                search=as_caller if search is not None else None,
            )
            text = await FileSearchTool().call(
                {"query": query, "max_num_results": request.max_num_results}, context
            )
            hits = json.loads(text)
            item["results"] = [
                {
                    "file_id": hit["file_id"],
                    "filename": hit["filename"],
                    "score": hit["score"],
                    "text": hit["text"],
                    "attributes": {},
                }
                for hit in hits
            ]
        except (EmberError, ValueError) as exc:
            item["status"] = "failed"
            item["queries"] = item["queries"] or [arguments]
            del exc
        return item

    def _failed(self, item: Item, code: int, message: str) -> Item:
        item["error"] = {"type": "mcp_protocol_error", "code": code, "message": message}
        item["status"] = "failed"
        return item

    def _audit(
        self, item: Item, caller: Caller, request_id: str, status: str, verdicts: dict[str, Any]
    ) -> None:
        output = item["output"] or json.dumps(item["error"], ensure_ascii=False)
        self.guard.audit(
            request_id=request_id,
            tenant=caller.tenant,
            server=item["server_label"],
            tool=item["name"],
            arguments=item["arguments"],
            output=output,
            status=status,
            verdicts={**verdicts, "call_id": item["id"]},
        )

    async def close(self) -> None:
        await self.servers.close()


def tool_result_text(item: Item) -> str:
    """What the model reads back for a server-side call item."""
    if item["type"] == "file_search_call":
        if item.get("results") is None:
            return "file_search failed: the search could not run."
        return json.dumps(item["results"], ensure_ascii=False)
    if item.get("error"):
        error = item["error"]
        if isinstance(error, dict):
            message = error.get("message") or json.dumps(error.get("content"), ensure_ascii=False)
        else:  # a client that keeps the history may send the older string form back
            message = str(error)
        return f"Error: {message}"
    return str(item.get("output") or "")
