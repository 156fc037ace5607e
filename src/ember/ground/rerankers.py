"""Rerankers: what may reorder a search's fused hits, registered by name.

A reranker is an object with ``rerank(query, hits) -> hits`` (a cross-encoder, an LLM judging
relevance); :func:`register_reranker` registers a factory of one. ``none`` (keep the fused
order) is built in; others come from plugin packages (``ember.plugins``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ember.plugins import PluginRegistry

if TYPE_CHECKING:
    from ember.ground.retrieval import Hit


class Reranker(Protocol):
    """Reorders fused hits (e.g. a cross-encoder or an LLM judging relevance)."""

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


RerankerFactory = Callable[[], Reranker]
RERANKERS: PluginRegistry[RerankerFactory] = PluginRegistry("reranker")


def register_reranker(name: str) -> Callable[[RerankerFactory], RerankerFactory]:
    """Decorator: register a factory of a :class:`Reranker` as ``name``."""

    def register(factory: RerankerFactory) -> RerankerFactory:
        return RERANKERS.add(name, factory)

    return register


@register_reranker("none")
class NoReranker:
    """Keeps the fused order."""

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        return hits
