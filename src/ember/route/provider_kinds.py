"""Remote provider kinds: the client for a provider's API, chosen per provider by ``kind``.

A kind is a factory ``(name, ProviderConfig) -> Provider`` registered with
:func:`register_provider_kind`; ``[providers.NAME] kind = "..."`` picks one for a provider.
``openai``, the OpenAI-compatible chat completions client of :mod:`ember.route.provider`, is
built in and the default; a plugin package adds others (``ember.plugins``). Whatever the
kind, a provider speaks OpenAI's chat shapes to the router and reports each failure as
``ember.route.provider.UpstreamError``, saying whether another attempt may succeed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from ember.plugins import PluginRegistry

if TYPE_CHECKING:
    from ember.settings import ProviderConfig


class Provider(Protocol):
    """One remote endpoint, as the router uses it."""

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A whole ``chat.completion`` object for a chat completions request body."""
        ...

    def stream(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``chat.completion.chunk`` objects until the answer ends."""
        ...

    async def close(self) -> None:
        """Release connections (the server is stopping)."""
        ...


ProviderFactory = Callable[[str, "ProviderConfig"], Provider]
PROVIDER_KINDS: PluginRegistry[ProviderFactory] = PluginRegistry("provider")


def register_provider_kind(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    """Decorator: make ``factory`` the client of providers whose ``kind`` is ``name``."""

    def register(factory: ProviderFactory) -> ProviderFactory:
        return PROVIDER_KINDS.add(name, factory)

    return register


def open_provider(name: str, config: ProviderConfig) -> Provider:
    """The client of ``[providers.NAME]``, of the kind its ``kind`` names."""
    factory = PROVIDER_KINDS.get(config.kind)
    if factory is None:
        raise ValueError(
            f"[providers.{name}] has kind {config.kind!r}, which is not installed "
            f"(known: {', '.join(sorted(PROVIDER_KINDS))}; `ember plugins` lists them)."
        )
    return factory(name, config)


@register_provider_kind("openai")
def openai_provider(name: str, config: ProviderConfig) -> Provider:
    # Imported here: aiohttp is loaded only where a provider is opened.
    from ember.route.provider import RemoteProvider

    return RemoteProvider(name, config)
