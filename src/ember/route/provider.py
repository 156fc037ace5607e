"""A client for remote OpenAI-compatible providers (aiohttp, async, streaming SSE).

Every failure becomes an :class:`UpstreamError` that says whether another attempt (or another
target) may succeed: 429, 5xx, timeouts, connection errors and broken streams are retryable,
and so is 404 (the target does not serve the model: vLLM without it, a wrong ``base_url``);
other 4xx are the request's fault and are passed to the client as they are. Its message names
the provider and the status; the provider's own error text stays in its ``body``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from ember.settings import ProviderConfig


class UpstreamError(Exception):
    """A provider's failure as routing needs it: retryable or not, when to retry, its body.

    Never shown to a client: ``ember.route.remote`` translates it into the error tree.
    ``message`` is in Ember's words (a status, a timeout), never the provider's text, which
    stays in ``body``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.body = body


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _status_error(name: str, status: int, retry_after: str | None, text: str) -> UpstreamError:
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return UpstreamError(
        f"{name} answered {status}",
        status=status,
        retryable=status in (404, 429) or status >= 500,
        retry_after=parse_retry_after(retry_after),
        body=body if isinstance(body, dict) else None,
    )


def auth_headers(config: ProviderConfig) -> dict[str, str]:
    """The provider's ``Authorization`` header, from the variable ``api_key_env`` names."""
    key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


def is_error_event(chunk: dict[str, Any]) -> bool:
    """An SSE event that reports a failure: OpenAI's ``{"error": ...}`` or vLLM's older
    ``{"object": "error", ...}``."""
    return "error" in chunk or chunk.get("object") == "error"


class RemoteProvider:
    """One remote endpoint: a pooled HTTP client and a concurrency limit.

    The client is aiohttp's: its connection pool hands out a kept-alive connection in
    constant time, where httpx's walks (and polls) every pooled connection on each request,
    which under a hundred concurrent requests costs more than the rest of the gateway.
    """

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config
        self.headers = auth_headers(config)
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        # Each phase (connecting, every read) may take up to timeout_s, as with httpx.
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.timeout_s, sock_read=config.timeout_s
        )
        self._session: aiohttp.ClientSession | None = None  # made inside the event loop
        self.slots = asyncio.Semaphore(config.max_concurrency)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.config.max_concurrency, keepalive_timeout=4.0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self.headers, timeout=self.timeout
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A whole ``chat.completion`` object."""
        async with self.slots:
            try:
                async with self.session.post(self.url, json=payload) as response:
                    text = await response.text()
                    status, retry_after = response.status, response.headers.get("retry-after")
            except TimeoutError as exc:
                raise UpstreamError(f"{self.name} timed out") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError(f"{self.name} unreachable: {type(exc).__name__}") from exc
            if status != 200:
                raise _status_error(self.name, status, retry_after, text)
            try:
                body = json.loads(text)
                body["choices"][0]["message"]
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise UpstreamError(f"{self.name} sent a malformed completion") from exc
            if not isinstance(body, dict):
                raise UpstreamError(f"{self.name} sent a malformed completion")
            return body

    async def stream(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``chat.completion.chunk`` objects until ``[DONE]``."""
        async with self.slots:
            try:
                async with self.session.post(
                    self.url, json={**payload, "stream": True}
                ) as response:
                    if response.status != 200:
                        text = await response.text()
                        retry_after = response.headers.get("retry-after")
                        raise _status_error(self.name, response.status, retry_after, text)
                    done = False
                    async for raw in response.content:
                        line = raw.decode("utf-8", errors="replace").strip()
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            done = True
                            break
                        try:
                            chunk = json.loads(data)
                        except ValueError as exc:
                            raise UpstreamError(f"{self.name} sent malformed SSE") from exc
                        if not isinstance(chunk, dict):
                            raise UpstreamError(f"{self.name} sent malformed SSE")
                        if is_error_event(chunk):
                            raise UpstreamError(f"{self.name} failed mid-stream")
                        yield chunk
                    if not done:
                        raise UpstreamError(f"{self.name} closed the stream early")
            except TimeoutError as exc:
                raise UpstreamError(f"{self.name} timed out") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError(f"{self.name} unreachable: {type(exc).__name__}") from exc
            except ValueError as exc:  # a line longer than aiohttp's buffer
                raise UpstreamError(f"{self.name} sent malformed SSE") from exc
