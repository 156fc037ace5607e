"""A client for remote OpenAI-compatible providers (httpx, async, streaming SSE).

Every failure becomes an :class:`UpstreamError` that says whether another attempt (or another
target) may succeed: 429, 5xx, timeouts, connection errors and broken streams are retryable;
other 4xx are the request's fault and are passed to the client as they are.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ember.settings import ProviderConfig


class UpstreamError(Exception):
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


def _status_error(response: httpx.Response, text: str) -> UpstreamError:
    status = response.status_code
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    detail = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        detail = str(body["error"].get("message", ""))
    return UpstreamError(
        f"upstream answered {status}{': ' + detail if detail else ''}",
        status=status,
        retryable=status == 429 or status >= 500,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        body=body if isinstance(body, dict) else None,
    )


class RemoteProvider:
    """One remote endpoint: a pooled HTTP client and a concurrency limit."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config
        key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            limits=httpx.Limits(
                max_connections=config.max_concurrency,
                max_keepalive_connections=config.max_concurrency,
            ),
        )
        self.slots = asyncio.Semaphore(config.max_concurrency)

    async def close(self) -> None:
        await self.client.aclose()

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A whole ``chat.completion`` object."""
        async with self.slots:
            try:
                response = await self.client.post("chat/completions", json=payload)
            except httpx.TimeoutException as exc:
                raise UpstreamError(f"{self.name} timed out") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(f"{self.name} unreachable: {type(exc).__name__}") from exc
            if response.status_code != 200:
                raise _status_error(response, response.text)
            try:
                body = response.json()
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
                async with self.client.stream(
                    "POST", "chat/completions", json={**payload, "stream": True}
                ) as response:
                    if response.status_code != 200:
                        raise _status_error(response, (await response.aread()).decode())
                    done = False
                    async for line in response.aiter_lines():
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
                        if "error" in chunk:
                            raise UpstreamError(f"{self.name} failed mid-stream")
                        yield chunk
                    if not done:
                        raise UpstreamError(f"{self.name} closed the stream early")
            except httpx.TimeoutException as exc:
                raise UpstreamError(f"{self.name} timed out") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(f"{self.name} unreachable: {type(exc).__name__}") from exc
