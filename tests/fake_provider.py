"""A fake remote provider: a real HTTP server on loopback that speaks OpenAI chat completions.

It answers ``POST /v1/chat/completions`` streamed and not, records every request it received
(``received``), and misbehaves on command: queue actions with :meth:`FakeProvider.script`
(each request takes the next one; ``default`` when the queue is empty):

* ``"ok"``: a normal answer; ``("latency", seconds)``: the same after a delay;
* ``("429", retry_after)``: 429 with ``Retry-After``; ``"500"``: a server error;
* ``"timeout"``: sleeps far longer than any client waits;
* ``"malformed"``: a stream whose first event is not JSON;
* ``"disconnect"``: a stream that sends two tokens and then drops the connection.

Run it alone (the gateway benchmark does): ``python -m tests.fake_provider --port 9100
--latency-ms 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Action = str | tuple[str, float]


class FakeProvider:
    def __init__(self, *, latency_s: float = 0.0, answer_words: int = 8) -> None:
        self.latency_s = latency_s
        self.answer_words = answer_words
        self.actions: deque[Action] = deque()
        self.default: Action = "ok"
        # When set, every answer is this text (e.g. "no" for a yes/no judge) instead of
        # the echo and filler words.
        self.reply: str | None = None
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.app = Starlette(routes=self.routes())
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.port = 0

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ]

    # -- control -------------------------------------------------------------------------

    def script(self, *actions: Action) -> None:
        with self.lock:
            self.actions.extend(actions)

    def reset(self) -> None:
        with self.lock:
            self.actions.clear()
            self.received.clear()
            self.headers.clear()
            self.default = "ok"
            self.reply = None

    def texts(self) -> list[str]:
        """Every message content the provider has received, in order."""
        with self.lock:
            return [str(m.get("content") or "") for body in self.received for m in body["messages"]]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, port: int = 0) -> FakeProvider:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)

    # -- the API -------------------------------------------------------------------------

    async def models(self, _request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})

    def _next(self) -> Action:
        with self.lock:
            return self.actions.popleft() if self.actions else self.default

    def _words(self, body: dict[str, Any]) -> list[str]:
        if self.reply is not None:
            return self.reply.split()
        last = str(body["messages"][-1].get("content") or "")
        words = [f"w{i}" for i in range(self.answer_words)]
        return [f"echo:{last[:24]}", *words]

    @staticmethod
    def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
        """A call of the first offered function (each required argument set to the last
        user words) unless tools are off or the last message is already a tool result."""
        tools = body.get("tools") or []
        if not tools or body.get("tool_choice") == "none":
            return None
        if body["messages"][-1].get("role") == "tool":
            return None
        function = tools[0]["function"]
        required = function.get("parameters", {}).get("required", [])
        last = str(body["messages"][-1].get("content") or "")
        arguments = json.dumps({name: last[:12] for name in required})
        return {
            "id": "call_fake0",
            "type": "function",
            "function": {"name": function["name"], "arguments": arguments},
        }

    @staticmethod
    def _logprobs(body: dict[str, Any], words: list[str]) -> dict[str, Any] | None:
        """Made-up log-probabilities, one per word, when the request asks for them."""
        if not body.get("logprobs"):
            return None
        top = int(body.get("top_logprobs") or 0)
        content = []
        for i, word in enumerate(words):
            token = (" " if i else "") + word
            alternatives = [
                {"token": f"alt{j}", "logprob": -1.0 - j, "bytes": list(f"alt{j}".encode())}
                for j in range(top)
            ]
            content.append(
                {
                    "token": token,
                    "logprob": -0.25,
                    "bytes": list(token.encode()),
                    "top_logprobs": alternatives,
                }
            )
        return {"content": content}

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            self.received.append(body)
            self.headers.append(dict(request.headers))
        action = self._next()
        name, arg = (action, 0.0) if isinstance(action, str) else action
        delay = self.latency_s + (arg if name == "latency" else 0.0)
        if delay:
            await asyncio.sleep(delay)
        if name == "429":
            return JSONResponse(
                {"error": {"message": "slow down", "type": "rate_limit_error", "code": None}},
                status_code=429,
                headers={"retry-after": f"{arg:g}"},
            )
        if name == "500":
            return JSONResponse(
                {"error": {"message": "boom", "type": "server_error", "code": None}},
                status_code=500,
            )
        if name == "timeout":
            await asyncio.sleep(3600)
        words = self._words(body)
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        finish = "stop"
        if body.get("max_tokens") is not None:
            finish = "length" if int(body["max_tokens"]) < len(words) else "stop"
            words = words[: int(body["max_tokens"])]
            usage["completion_tokens"] = len(words)
            usage["total_tokens"] = prompt_tokens + len(words)
        call = self._tool_call(body)
        if call is not None:
            finish = "tool_calls"
        base = {
            "id": "chatcmpl-fake",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
        }
        if not body.get("stream"):
            return JSONResponse(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": (
                                {"role": "assistant", "content": None, "tool_calls": [call]}
                                if call is not None
                                else {"role": "assistant", "content": " ".join(words)}
                            ),
                            "finish_reason": finish,
                            "logprobs": self._logprobs(body, words),
                        }
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            self._stream(base, words, usage, name, include_usage, finish, call),
            media_type="text/event-stream",
        )

    async def _stream(
        self,
        base: dict[str, Any],
        words: list[str],
        usage: dict[str, int],
        name: str,
        include_usage: bool,
        finish: str = "stop",
        call: dict[str, Any] | None = None,
    ) -> AsyncIterator[bytes]:
        def frame(payload: dict[str, Any]) -> bytes:
            return f"data: {json.dumps(payload)}\n\n".encode()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return frame(
                {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        if name == "malformed":
            yield b"data: {this is not json\n\n"
            return
        yield chunk({"role": "assistant", "content": ""})
        if call is not None:  # as OpenAI streams a call: id and name, then argument pieces
            arguments = call["function"]["arguments"]
            head = {**call, "index": 0, "function": {"name": call["function"]["name"]}}
            yield chunk(
                {"tool_calls": [{**head, "function": {**head["function"], "arguments": ""}}]}
            )
            for start in range(0, len(arguments), 5):
                piece = {"index": 0, "function": {"arguments": arguments[start : start + 5]}}
                yield chunk({"tool_calls": [piece]})
            words = []
        for i, word in enumerate(words):
            if name == "disconnect" and i == 2:
                raise ConnectionResetError("the fake provider drops the stream")
            yield chunk({"content": (" " if i else "") + word})
            await asyncio.sleep(0)
        yield chunk({}, finish)
        if include_usage:
            yield frame({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    fake = FakeProvider(latency_s=args.latency_ms / 1000)
    fake.received = _Discard()  # type: ignore[assignment]  # a long benchmark keeps nothing
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning")


class _Discard(list):  # type: ignore[type-arg]
    def append(self, _item: object) -> None:
        return None


if __name__ == "__main__":
    main()
