"""Wire models of the server-side tools of ``POST /v1/responses``: ``{"type": "mcp"}``,
and the MCP items a client sends back (``mcp_approval_response``, and the ``mcp_call``,
``mcp_list_tools`` and ``mcp_approval_request`` items of an earlier response)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from ember.act.mcp_servers import ApprovalPolicy, ToolFilter
from ember.api.wire import WireModel
from ember.errors import UnsupportedParameterError
from ember.services.agent import McpToolRequest, new_id

Item = dict[str, Any]


class McpToolFilter(WireModel):
    model_config = ConfigDict(extra="forbid")
    tool_names: list[str] | None = None
    read_only: bool | None = None

    def to_domain(self) -> ToolFilter:
        names = tuple(self.tool_names) if self.tool_names is not None else None
        return ToolFilter(tool_names=names, read_only=self.read_only)


class McpApprovalFilter(WireModel):
    model_config = ConfigDict(extra="forbid")
    always: McpToolFilter | None = None
    never: McpToolFilter | None = None


class McpTool(WireModel):
    """``{"type": "mcp", "server_label": ...}``: an MCP server's tools, run by Ember."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["mcp"]
    server_label: str = Field(min_length=1, max_length=64)
    server_url: str | None = None
    server_description: str | None = None
    headers: dict[str, str] | None = None
    allowed_tools: list[str] | McpToolFilter | None = None
    require_approval: Literal["always", "never"] | McpApprovalFilter | None = None
    connector_id: str | None = None
    authorization: str | None = None

    def to_domain(self, index: int) -> McpToolRequest:
        if self.connector_id is not None:
            raise UnsupportedParameterError(
                "connector_id is not supported; register the server in ember.toml.",
                param=f"tools[{index}].connector_id",
            )
        headers = dict(self.headers or {})
        if self.authorization:
            headers["Authorization"] = f"Bearer {self.authorization}"
        allowed: ToolFilter | None = None
        if isinstance(self.allowed_tools, list):
            allowed = ToolFilter(tool_names=tuple(self.allowed_tools))
        elif self.allowed_tools is not None:
            allowed = self.allowed_tools.to_domain()
        approval: ApprovalPolicy | None = None
        if self.require_approval == "always":
            approval = ApprovalPolicy(default=True)
        elif self.require_approval == "never":
            approval = ApprovalPolicy(default=False)
        elif self.require_approval is not None:
            rule = self.require_approval
            approval = ApprovalPolicy(
                # With only ``never`` given, the rest need approval; with ``always``, the rest not.
                default=rule.always is None,
                always=rule.always.to_domain() if rule.always else None,
                never=rule.never.to_domain() if rule.never else None,
            )
        return McpToolRequest(
            server_label=self.server_label,
            index=index,
            echo=self.echo(),
            server_url=self.server_url,
            headers=headers,
            allowed=allowed,
            approval=approval,
        )

    def echo(self) -> Item:
        """The tool as the response repeats it: without headers or a token (secrets)."""
        return self.model_dump(exclude_none=True, exclude={"headers", "authorization"})


class McpApprovalResponseInput(WireModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["mcp_approval_response"]
    id: str | None = None
    approval_request_id: str
    approve: bool
    reason: str | None = None

    def to_item(self, index: int) -> Item:
        return {
            "id": self.id or new_id("mcpa"),
            "type": "mcp_approval_response",
            "approval_request_id": self.approval_request_id,
            "approve": self.approve,
            "reason": self.reason,
        }


class McpCallInput(WireModel):
    """An ``mcp_call`` of an earlier response, sent back by a client that keeps the history."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["mcp_call"]
    id: str
    server_label: str
    name: str
    arguments: str
    output: str | None = None
    error: Any = None
    approval_request_id: str | None = None

    def to_item(self, index: int) -> Item:
        return {**self.model_dump(), "status": "failed" if self.error else "completed"}


class McpListToolsInput(WireModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["mcp_list_tools"]
    id: str
    server_label: str
    tools: list[dict[str, Any]]
    error: str | None = None

    def to_item(self, index: int) -> Item:
        return self.model_dump()


class McpApprovalRequestInput(WireModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["mcp_approval_request"]
    id: str
    server_label: str
    name: str
    arguments: str

    def to_item(self, index: int) -> Item:
        return self.model_dump()
