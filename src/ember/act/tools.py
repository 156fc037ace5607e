"""Tools a model may call: the :class:`Tool` protocol and the registry of tools by name.

A tool has a ``name``, a ``description`` and a JSON Schema of its ``parameters`` (what a
chat request's ``tools`` entry carries), and an async ``call(arguments, context)`` that
returns the text the model reads back. Whatever a tool needs from the rest of Ember comes in
its :class:`ToolContext` (vector stores and a search function, for ``file_search``), so
tools import no service. Tools register an instance with :func:`register_tool`: the
built-in ones from their own modules, others from plugin packages (``ember.plugins``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ember.errors import InvalidRequestError
from ember.plugins import PluginRegistry


class Passage(Protocol):
    """A search hit as a tool reads it (``ember.ground.retrieval.Hit`` is one)."""

    @property
    def file_id(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def page(self) -> int | None: ...


class Search(Protocol):
    """Searches vector stores: ``VectorStoreService.retrieve`` is one."""

    async def __call__(
        self, store_ids: Sequence[str], query: str, *, k: int
    ) -> Sequence[Passage]: ...


@dataclass(frozen=True)
class ToolContext:
    """What the caller (the service running the model) lends a tool call."""

    vector_store_ids: tuple[str, ...] = ()
    search: Search | None = None


class Tool(Protocol):
    """A function a model may call."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON Schema of ``arguments``."""
        ...

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        """The result the model reads; bad ``arguments`` raise ``InvalidRequestError``."""
        ...


T = TypeVar("T", bound=Tool)
TOOLS: PluginRegistry[Tool] = PluginRegistry("tool")


def register_tool(tool: T) -> T:
    """Register ``tool`` under its ``name``."""
    TOOLS.add(tool.name, tool)
    return tool


def get_tool(name: str) -> Tool:
    """The tool registered as ``name``; an unknown name is the request's fault (400)."""
    tool = TOOLS.get(name)
    if tool is None:
        raise InvalidRequestError(
            f"Unknown tool {name!r}; known: {', '.join(sorted(TOOLS))}.", param="tools"
        )
    return tool


def registered_tools() -> list[Tool]:
    """Every registered tool, the built-in ones first."""
    return [TOOLS[name] for name in TOOLS]
