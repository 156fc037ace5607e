"""Active health checks of remote targets: ``GET /health`` and ``GET {base_url}/models``.

For each provider with ``health_check_s > 0`` a background task asks, every
``health_check_s`` seconds:

1. ``GET {root}/health``, ``root`` being ``base_url`` without a trailing ``/v1`` (vLLM answers
   200 with an empty body once its engine is ready, and an error when the engine is dead);
   a 404 means the server has no such endpoint (most OpenAI-compatible APIs) and is not a
   failure;
2. ``GET {base_url}/models``: the model ids it serves.

Every target of the provider gets the verdict (``TargetHealth.record_check``): a failed
``/health`` (another status, a timeout, a refused connection) or ``/models`` fails them all;
a target whose model is not listed fails alone. The policy ranks a failing target last
(``ember.route.policy``) until a check passes. A check waits for an answer at most the
interval or ``timeout_s``, whichever is shorter, and never less than a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ember.route.health import TargetHealth
from ember.route.policy import Target
from ember.route.provider import auth_headers
from ember.settings import ProviderConfig

if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger(__name__)


def health_url(base_url: str) -> str:
    """``/health`` beside the API: ``http://h:8001/v1`` → ``http://h:8001/health``."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    return f"{root}/health"


class CheckFailed(Exception):
    """A check that did not pass; ``str()`` says why in Ember's words."""


class HealthChecks:
    """The background checks of every provider that asks for them (``health_check_s``).

    The router starts them once an event loop runs (``start``) and stops them when it
    closes; ``check`` runs one provider's check now.
    """

    def __init__(
        self,
        providers: Mapping[str, ProviderConfig],
        targets: Iterable[Target],
        health: Mapping[str, TargetHealth],
    ) -> None:
        self.providers = {n: c for n, c in providers.items() if c.health_check_s > 0}
        self.targets: dict[str, dict[str, Target]] = {name: {} for name in self.providers}
        for target in targets:
            if target.provider in self.targets:
                self.targets[target.provider][target.name] = target
        self.health = health
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks or not self.providers:
            return
        for name in self.providers:
            self._tasks.append(asyncio.create_task(self._every(name), name=f"check-{name}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _every(self, name: str) -> None:
        interval = self.providers[name].health_check_s
        while True:
            await self.check(name)
            await asyncio.sleep(interval)

    async def check(self, name: str) -> None:
        """One check of provider ``name``; its targets' health gets the verdict."""
        try:
            served: set[str] | None = await self._ask(name)
            failure = ""
        except CheckFailed as exc:
            served, failure = None, str(exc)
        for target in self.targets[name].values():
            if served is not None and target.model not in served:
                ok, detail = False, f"{name} does not list the model {target.model}"
            else:
                ok, detail = served is not None, failure
            state = self.health[target.name]
            if ok != state.checked_ok or detail != state.check_detail:
                if ok:
                    logger.info("target %s is back in rotation", target.name)
                else:
                    logger.warning("target %s is out of rotation: %s", target.name, detail)
            state.record_check(ok, detail)

    async def _ask(self, name: str) -> set[str]:
        import aiohttp  # loaded only where a provider is checked

        config = self.providers[name]
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8))
        timeout = max(1.0, min(config.health_check_s, config.timeout_s))
        headers = auth_headers(config)
        try:
            async with self._session.get(
                health_url(config.base_url),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                if response.status not in (200, 404):
                    raise CheckFailed(f"{name}'s /health answered {response.status}")
            async with self._session.get(
                config.base_url.rstrip("/") + "/models",
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                if response.status != 200:
                    raise CheckFailed(f"{name}'s /models answered {response.status}")
                body: Any = await response.json(content_type=None)
        except TimeoutError as exc:
            raise CheckFailed(f"{name}'s health check timed out") from exc
        except aiohttp.ClientError as exc:
            raise CheckFailed(f"{name} unreachable: {type(exc).__name__}") from exc
        except ValueError as exc:
            raise CheckFailed(f"{name} sent a model list that is not JSON") from exc
        try:
            return {str(model["id"]) for model in body["data"]}
        except (KeyError, TypeError) as exc:
            raise CheckFailed(f"{name} sent a malformed model list") from exc
