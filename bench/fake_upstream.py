"""The gateway benchmark's upstream: the leanest OpenAI-shaped chat endpoint we can serve.

A raw ASGI app (no framework, no validation) on one uvicorn process with uvloop and httptools:
every ``POST .../chat/completions`` waits a fixed ``--latency-ms`` on the event loop and
answers one small, non-streamed chat completion (usage included); ``GET .../models`` says
it is up. The point is that the upstream costs as little CPU per request as possible, so
that on a small machine the gateways, not the upstream, are what the benchmark measures;
``tests/fake_provider.py`` is the misbehaving one the tests use.

``python bench/fake_upstream.py --port 9100 --latency-ms 50``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import uvicorn

ANSWER = "Hello, benchmark! This is the fake upstream answering."
Scope = dict[str, Any]


def completion(model: str, prompt_tokens: int) -> bytes:
    completion_tokens = len(ANSWER.split())
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
        separators=(",", ":"),
    ).encode()


def make_app(latency_s: float) -> Any:
    models = b'{"object":"list","data":[]}'

    async def respond(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: nothing to set up
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        path = scope["path"]
        if path.endswith("/chat/completions") and scope["method"] == "POST":
            try:
                body = json.loads(b"".join(chunks))
                model = str(body.get("model", "fake"))
                prompt = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
            except (ValueError, KeyError, TypeError, AttributeError):
                await respond(send, 400, b'{"error":{"message":"bad request","type":"x"}}')
                return
            await asyncio.sleep(latency_s)
            await respond(send, 200, completion(model, prompt))
        elif path.endswith("/models"):
            await respond(send, 200, models)
        else:
            await respond(send, 404, b'{"error":{"message":"not found","type":"x"}}')

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.latency_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
