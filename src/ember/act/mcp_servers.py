"""The MCP servers a request may reach, and what a request's ``mcp`` tool selects from one.

:class:`McpServers` holds one :class:`~ember.act.mcp_client.McpConnection` per label: the
servers of ``[mcp.LABEL]`` in ``ember.toml``, and a request's ``server_url`` only when the
URL is in ``mcp_server_urls`` (none by default: a request cannot make Ember fetch an
arbitrary URL). :class:`McpSelection` is one ``mcp`` tool of a request resolved against its
server: which tools the model sees (``allowed_tools``) and which need approval
(``require_approval``; ``always`` by default for a server not marked trusted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ember.act.mcp_client import McpConnection, McpToolInfo
from ember.errors import InvalidRequestError
from ember.settings import McpServerConfig


@dataclass(frozen=True)
class ToolFilter:
    """``{tool_names, read_only}``: a tool matches when every given condition holds."""

    tool_names: tuple[str, ...] | None = None
    read_only: bool | None = None

    def matches(self, tool: McpToolInfo) -> bool:
        if self.tool_names is not None and tool.name not in self.tool_names:
            return False
        return self.read_only is None or tool.read_only == self.read_only


@dataclass(frozen=True)
class ApprovalPolicy:
    """``require_approval``: a default, and filters of tools that always/never need it."""

    default: bool  # True: approval needed unless ``never`` matches
    always: ToolFilter | None = None
    never: ToolFilter | None = None

    def needs_approval(self, tool: McpToolInfo) -> bool:
        if self.always is not None and self.always.matches(tool):
            return True
        if self.never is not None and self.never.matches(tool):
            return False
        return self.default


@dataclass
class McpSelection:
    """One request's ``mcp`` tool: a server, its allowed tools, and its approval policy."""

    label: str
    connection: McpConnection
    allowed: ToolFilter | None
    approval: ApprovalPolicy
    tools: list[McpToolInfo] = field(default_factory=list)

    def visible(self, listed: Sequence[McpToolInfo]) -> list[McpToolInfo]:
        return [t for t in listed if self.allowed is None or self.allowed.matches(t)]

    def tool(self, name: str) -> McpToolInfo | None:
        return next((t for t in self.tools if t.name == name), None)

    @property
    def remote(self) -> bool:
        return self.connection.config.location == "remote"


class McpServers:
    """Connections by label, opened on first use and kept for the life of the process."""

    def __init__(self, configs: dict[str, McpServerConfig], allowed_urls: Sequence[str]) -> None:
        for label, config in configs.items():
            if bool(config.command) == bool(config.url):
                raise ValueError(f"[mcp.{label}] needs exactly one of 'command' and 'url'.")
        self.configs = dict(configs)
        self.allowed_urls = tuple(allowed_urls)
        self._connections: dict[str, McpConnection] = {}

    def labels(self) -> list[str]:
        return sorted(self.configs)

    def connection(
        self,
        label: str,
        *,
        server_url: str | None = None,
        headers: dict[str, str] | None = None,
        param: str = "tools",
    ) -> McpConnection:
        """The connection for ``label``; an unknown label or a URL not allowed is a 400."""
        config = self.configs.get(label)
        if server_url is not None:
            if server_url not in self.allowed_urls:
                raise InvalidRequestError(
                    f"server_url {server_url!r} is not in the allow-list (mcp_server_urls); "
                    "register the server in ember.toml as [mcp.LABEL] and name its label.",
                    param=f"{param}.server_url",
                )
            if config is not None and config.url != server_url:
                raise InvalidRequestError(
                    f"server_label {label!r} names a configured server with another URL.",
                    param=f"{param}.server_url",
                )
            if config is None:
                config = McpServerConfig(url=server_url, headers=dict(headers or {}))
                key = f"{label}\x00{server_url}\x00{sorted((headers or {}).items())}"
                return self._open(key, label, config)
        if config is None:
            known = ", ".join(self.labels()) or "none are configured"
            raise InvalidRequestError(
                f"Unknown MCP server_label {label!r}; known: {known}.",
                param=f"{param}.server_label",
            )
        return self._open(label, label, config)

    def _open(self, key: str, label: str, config: McpServerConfig) -> McpConnection:
        connection = self._connections.get(key)
        if connection is None:
            connection = self._connections[key] = McpConnection(label, config)
        return connection

    def opened(self) -> list[McpConnection]:
        return list(self._connections.values())

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()


def tool_filter(value: Any) -> ToolFilter | None:
    """``allowed_tools`` or a ``require_approval`` branch: a list of names or a filter dict."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return ToolFilter(tool_names=tuple(value))
    names = value.get("tool_names")
    return ToolFilter(
        tool_names=tuple(names) if names is not None else None, read_only=value.get("read_only")
    )
