"""A connection to one MCP server (stdio or Streamable HTTP), with the ``mcp`` SDK's client.

The SDK's ``Client`` is an async context manager whose tasks must be entered and left in one
task, while Ember's requests run in many. So one worker task per server owns the connection
and serves calls from a queue (:class:`McpConnection`); a request awaits its call's future
with its own deadline. A call that times out, or a server that dies mid-call, closes the
connection (a stdio server's process is ended); the next call starts a fresh one. Failures
come back as :class:`McpCallError` with a JSON-RPC-like ``code``, never as the SDK's
exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from ember.settings import McpServerConfig

logger = logging.getLogger(__name__)

# Codes of the errors Ember itself reports for a call (JSON-RPC's server-error range).
TIMEOUT = -32001
CONNECTION = -32002


class McpCallError(Exception):
    """A call or a listing failed: ``code`` as in an ``mcp_protocol_error``."""

    def __init__(self, message: str, code: int = CONNECTION) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class McpToolInfo:
    """A tool as the server listed it."""

    name: str
    description: str | None
    input_schema: dict[str, Any]
    read_only: bool
    annotations: dict[str, Any] | None = None

    def listed(self) -> dict[str, Any]:
        """The tool in an ``mcp_list_tools`` item."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "annotations": self.annotations,
        }


@dataclass(frozen=True)
class McpResult:
    """A finished call: its text, and whether the tool reported an error (``isError``)."""

    text: str
    is_error: bool = False


_Job = tuple[Callable[[Client], Awaitable[Any]], "asyncio.Future[Any]"]


@dataclass
class McpConnection:
    """One server: a worker task owns its ``Client``; tools are listed once and cached."""

    label: str
    config: McpServerConfig
    _queue: asyncio.Queue[_Job] | None = field(default=None, repr=False)
    _worker: asyncio.Task[None] | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _tools: list[McpToolInfo] | None = None
    restarts: int = 0
    last_error: str | None = None
    started_at: float | None = None

    async def list_tools(self, *, refresh: bool = False) -> list[McpToolInfo]:
        if self._tools is None or refresh:
            result = await self._submit(
                lambda client: client.list_tools(), self.config.connect_timeout_s
            )
            self._tools = [_tool_info(tool) for tool in result.tools]
        return list(self._tools)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, timeout_s: float | None = None
    ) -> McpResult:
        timeout = timeout_s or self.config.call_timeout_s

        async def call(client: Client) -> Any:
            return await client.call_tool(name, arguments, read_timeout_seconds=timeout)

        result = await self._submit(call, timeout)
        texts = [getattr(part, "text", None) for part in result.content]
        text = "\n".join(t for t in texts if isinstance(t, str))
        if not text and result.structured_content is not None:
            text = json.dumps(result.structured_content, ensure_ascii=False)
        return McpResult(text=text, is_error=bool(result.is_error))

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(BaseException):
                await worker

    async def _submit(self, job: Callable[[Client], Awaitable[Any]], timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:
            self._queue = asyncio.Queue()
            self._loop = loop
            self._worker = loop.create_task(self._serve(self._queue), name=f"mcp-{self.label}")
            self.started_at = time.time()
        assert self._queue is not None
        future: asyncio.Future[Any] = loop.create_future()
        await self._queue.put((job, future))
        # The connect time is not the call's: a stdio server may take seconds to start.
        deadline = timeout + self.config.connect_timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(future), deadline)
        except TimeoutError:
            await self._fail(f"The MCP server '{self.label}' did not answer in {timeout:g} s.")
            raise McpCallError(
                f"The MCP server '{self.label}' did not answer in {timeout:g} s.", TIMEOUT
            ) from None

    async def _fail(self, message: str) -> None:
        self.last_error = message
        self.restarts += 1
        await self.close()

    def _retire(self) -> None:
        """Called by the worker: calls from now on go to a new worker (a new connection)."""
        if self._worker is asyncio.current_task():
            self._worker = None
            self._queue = None

    async def _serve(self, queue: asyncio.Queue[_Job]) -> None:
        """Connect, then run jobs one at a time until the connection breaks."""
        pending: _Job | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = await _connect(stack, self.config)
                while True:
                    pending = await queue.get()
                    job, future = pending
                    try:
                        result = await job(client)
                    except Exception as exc:
                        error = _call_error(self.label, exc)
                        if not future.done():
                            future.set_exception(error)
                        if error.code in (TIMEOUT, CONNECTION):
                            self.last_error = error.message
                            self.restarts += 1
                            self._retire()  # the next call starts a fresh connection
                            break
                    else:
                        if not future.done():
                            future.set_result(result)
                    pending = None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the SDK raises exception groups on a broken transport
            self._retire()
            message = f"The MCP server '{self.label}' failed: {_describe(exc)}"
            self.last_error = message
            logger.warning("%s", message)
            if pending is not None and not pending[1].done():
                pending[1].set_exception(McpCallError(message))
        finally:
            self._retire()
            while not queue.empty():  # calls queued behind a broken connection fail fast
                _, future = queue.get_nowait()
                if not future.done():
                    future.set_exception(
                        McpCallError(f"The MCP server '{self.label}' connection closed.")
                    )
            if pending is not None and not pending[1].done():
                pending[1].set_exception(
                    McpCallError(f"The MCP server '{self.label}' connection closed.")
                )


async def _connect(stack: contextlib.AsyncExitStack, config: McpServerConfig) -> Client:
    """An entered ``Client`` whose transport (and HTTP client) ``stack`` closes."""
    if config.command:
        params = StdioServerParameters(
            command=config.command, args=list(config.args), env=dict(config.env) or None
        )
        client = Client(params, read_timeout_seconds=config.call_timeout_s)
    else:
        assert config.url is not None
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=dict(config.headers),
                timeout=httpx2.Timeout(config.connect_timeout_s, read=config.call_timeout_s + 5),
            )
        )
        client = Client(
            streamable_http_client(config.url, http_client=http),
            read_timeout_seconds=config.call_timeout_s,
        )
    return await stack.enter_async_context(client)


def _tool_info(tool: Any) -> McpToolInfo:
    annotations = tool.annotations
    read_only = bool(annotations is not None and annotations.read_only_hint)
    dumped = (
        annotations.model_dump(by_alias=True, exclude_none=True)
        if annotations is not None
        else None
    )
    return McpToolInfo(
        name=tool.name,
        description=tool.description,
        input_schema=dict(tool.input_schema or {"type": "object", "properties": {}}),
        read_only=read_only,
        annotations=dumped or None,
    )


def _describe(exc: BaseException) -> str:
    """The innermost message of a (possibly grouped) exception."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


def _call_error(label: str, exc: BaseException) -> McpCallError:
    message = _describe(exc)
    code = getattr(exc, "code", None)
    if "timed out" in message.lower():
        return McpCallError(f"The MCP server '{label}' timed out: {message}", TIMEOUT)
    if isinstance(code, int) and code != 0:
        connection = "closed" in message.lower()
        return McpCallError(
            f"The MCP server '{label}' answered with an error: {message}",
            CONNECTION if connection else code,
        )
    return McpCallError(f"The MCP server '{label}' failed: {message}")
