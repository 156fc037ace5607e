"""A fake vLLM: a real HTTP server on loopback that answers as ``vllm serve`` does.

It is :class:`~tests.fake_provider.FakeProvider` (chat completions streamed and not, scripted
misbehaviour, ``received``) with what vLLM's OpenAI server adds:

* ``GET /health``: 200 with an empty body while ``healthy``, else 503 (vLLM's answer once its
  engine is dead);
* ``GET /v1/models``: the ``served`` model ids in vLLM's shape (``owned_by: vllm``,
  ``max_model_len``);
* vLLM's error body, bare rather than nested under ``error`` (vLLM before 0.10):
  ``{"object": "error", "message", "type": "BadRequestError", "param": null, "code": 400}``,
  for a ``max_tokens`` beyond ``max_model_len`` (400) and a model it does not serve (404);
* switches: ``latency_s`` (slow), ``healthy`` (``/health`` 503), ``served`` (drop a model),
  ``kill()`` / ``revive()`` (the port refuses connections, then answers again).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_provider import FakeProvider


def vllm_error(message: str, kind: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"object": "error", "message": message, "type": kind, "param": None, "code": status},
        status_code=status,
    )


class FakeVLLM(FakeProvider):
    def __init__(self, *served: str, latency_s: float = 0.0, max_model_len: int = 512) -> None:
        self.served = set(served or ("m",))
        self.max_model_len = max_model_len
        self.healthy = True
        self.health_checks = 0
        super().__init__(latency_s=latency_s)

    def routes(self) -> list[Route]:
        return [*super().routes(), Route("/health", self.health, methods=["GET"])]

    def reset(self) -> None:
        super().reset()
        self.healthy = True
        self.latency_s = 0.0

    def kill(self) -> None:
        """Stop answering: connections to the port are refused."""
        self.stop()

    def revive(self) -> FakeVLLM:
        """Answer again on the same port."""
        return self.start(self.port)  # type: ignore[return-value]

    async def health(self, _request: Request) -> Response:
        self.health_checks += 1
        return Response(status_code=200 if self.healthy else 503)

    async def models(self, _request: Request) -> Response:
        created = int(time.time())
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": model,
                        "object": "model",
                        "created": created,
                        "owned_by": "vllm",
                        "root": model,
                        "parent": None,
                        "max_model_len": self.max_model_len,
                    }
                    for model in sorted(self.served)
                ],
            }
        )

    async def chat(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        if body.get("model") not in self.served:
            with self.lock:
                self.received.append(body)
            return vllm_error(
                f"The model `{body.get('model')}` does not exist.", "NotFoundError", 404
            )
        wanted = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        if int(wanted) > self.max_model_len:
            with self.lock:
                self.received.append(body)
            return vllm_error(
                f"This model's maximum context length is {self.max_model_len} tokens. "
                f"However, you requested {wanted} tokens in the completion. Please reduce "
                "the length of the messages or completion.",
                "BadRequestError",
                400,
            )
        return await super().chat(request)
