"""A bounded soak: many concurrent clients, mixed requests, some hanging up mid-stream.

One ``ember serve`` (its own temporary ``EMBER_HOME``, the small chat model and the embedder
preloaded, one small vector store) takes ``--clients`` concurrent clients for ``--seconds``.
Each client loops over a mix of requests:

* ``chat-stream``: a streamed chat completion; one in ``--disconnect`` of them hangs up after
  the first content chunk;
* ``chat``: a plain chat completion, checked for shape and usage;
* ``embeddings``: two texts, checked for two vectors of the model's width;
* ``grounded``: a chat answered from the vector store (``ember.vector_store_ids``);
* ``tool``: a chat with a function tool and ``tool_choice`` naming it, checked for a call whose
  arguments parse as JSON;
* ``hostile``: a malformed request (wrong types, a lone surrogate, a missing field), which must
  be a 400 in the OpenAI error shape.

A 503 with ``Retry-After`` is the server shedding load as designed (``max_queued_requests``):
counted as ``shed``, and the client waits as told. Any other 5xx, a dropped connection that
the client did not cause, or a response of the wrong shape is a failure.

Around the load: the server's resident memory (its process and its engine processes), its
threads and open file descriptors after a warm-up (every kind once, then ``--warmup``
seconds of the same load, then ``--settle`` seconds idle: start), at the peak, and after the
load ends and the server has been idle for ``--settle`` seconds (end). The peer is the same load
without the disconnects, hostile inputs and grounding (plain streamed chats) on
``llama_cpp.server`` serving the same GGUF, run after Ember, alone on the machine.

``--rounds`` (default 2) runs the load again after the first end measurement and measures
after each round: memory that a leak holds grows round after round, memory that a bounded
cache holds (the llama.cpp prefix cache, ``--prefix-cache-mb``, 256 by default as in
``ember serve``) stops growing once the cache is full.

Run ``python bench/soak.py --help``; ``--clients 64 --seconds 180`` is the issue's soak. The
exit status is non-zero only when something broke (a 5xx other than shedding, a wrong shape),
never because a target was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from ember.models.embedded import E5_ID, SMOLLM2_ID, embedded_models
from ember.settings import Settings

KINDS = ("chat-stream", "chat", "embeddings", "grounded", "tool", "hostile")
WEIGHTS = (5, 2, 2, 1, 1, 1)
DOCUMENT = (
    "Ember Field Notes\n\n"
    "The lighthouse at Cape Morrow was built in 1871 and stands 38 metres tall. Its lamp is "
    "visible for 22 nautical miles. The keeper's cottage became a museum in 1994.\n\n"
    "The harbour ferry runs every 40 minutes from 6 am to 11 pm and costs 3 euros a trip."
)
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
HOSTILE = [
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "10"},
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "true"},
    {"model": "m", "messages": []},
    {"model": "m", "messages": [{"role": "wizard", "content": "hi"}]},
    {"model": "m"},
]
_SEQUENCE = itertools.count(1)
SURROGATE = b'{"model": "m", "messages": [{"role": "user", "content": "a\\ud800"}]}'


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def fail(self, kind: str, why: str) -> None:
        """Note why a request failed (the caller counts it as ``failed``)."""
        if len(self.failures) < 20:
            self.failures.append(f"{kind}: {why}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _footprint(pid: int) -> dict[str, int]:
    """Resident bytes, threads and open descriptors of the server and its engine processes."""
    rss = threads = fds = 0
    for proc in _tree(pid):
        try:
            rss += proc.memory_info().rss
            threads += proc.num_threads()
            fds += proc.num_fds()
        except psutil.NoSuchProcess:
            continue
    return {"rss": rss, "threads": threads, "fds": fds}


async def _chat_stream(
    client: httpx.AsyncClient,
    model: str,
    tally: Tally,
    *,
    hang_up: bool,
    text: str,
    require_usage: bool,
) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 48,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usage, content = None, 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            return await _status(response, tally, "chat-stream")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                tally.fail("chat-stream", f"error frame {chunk['error']}")
                return "failed"
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                content += 1
                if hang_up:
                    return "disconnected"  # leaving the block closes the connection mid-stream
            usage = chunk.get("usage") or usage
    if not content:
        tally.fail("chat-stream", "no content")
        return "failed"
    if require_usage and (not usage or usage["completion_tokens"] < 1):
        tally.fail("chat-stream", f"no usage at the end ({usage})")
        return "failed"
    return "ok"


async def _status(response: httpx.Response, tally: Tally, kind: str) -> str:
    await response.aread()
    if response.status_code == 503 and response.headers.get("retry-after"):
        await asyncio.sleep(float(response.headers["retry-after"]))
        return "shed"
    tally.fail(kind, f"HTTP {response.status_code}: {response.text[:200]}")
    return "failed"


async def _one(
    client: httpx.AsyncClient, kind: str, args: argparse.Namespace, store: str, tally: Tally
) -> str:
    model = args.model
    # A number of its own in every prompt: no two requests are the same, so none is answered
    # from the response cache (on by default for repeated greedy requests).
    topic = random.choice(["Say hello", "Name a colour", "Count to five", "What is 2+2"])
    text = f"{topic}. (request {next(_SEQUENCE)})"
    if kind == "chat-stream":
        hang_up = random.random() < 1 / args.disconnect
        return await _chat_stream(
            client, model, tally, hang_up=hang_up, text=text, require_usage=args.require_usage
        )
    if kind == "hostile":
        if random.random() < 0.3:
            response = await client.post(
                "/v1/chat/completions",
                content=SURROGATE,
                headers={"content-type": "application/json"},
            )
        else:
            response = await client.post("/v1/chat/completions", json=random.choice(HOSTILE))
        error = response.json().get("error") if response.status_code == 400 else None
        if not error or not error.get("message") or error.get("type") != "invalid_request_error":
            tally.fail(kind, f"HTTP {response.status_code}: {response.text[:200]}")
            return "failed"
        return "ok"
    if kind == "embeddings":
        response = await client.post(
            "/v1/embeddings", json={"model": E5_ID, "input": ["query: ferry", text]}
        )
        if response.status_code != 200:
            return await _status(response, tally, kind)
        data = response.json()["data"]
        if len(data) != 2 or len(data[0]["embedding"]) < 64:
            tally.fail(kind, "wrong embeddings shape")
            return "failed"
        return "ok"
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 48,
        "temperature": 0,
    }
    if kind == "grounded":
        body["messages"] = [
            {"role": "user", "content": f"How tall is the lighthouse? (request {next(_SEQUENCE)})"}
        ]
        body["ember"] = {"vector_store_ids": [store]}
    if kind == "tool":
        city = random.choice(["Paris", "Lima", "Oslo", "Osaka", "Quito"])
        body["messages"] = [
            {"role": "user", "content": f"What is the weather in {city}? ({next(_SEQUENCE)})"}
        ]
        body["tools"] = [TOOL]
        body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    response = await client.post("/v1/chat/completions", json=body)
    if response.status_code != 200:
        return await _status(response, tally, kind)
    reply = response.json()
    message = reply["choices"][0]["message"]
    usage = reply.get("usage") or {}
    if kind == "tool":
        calls = message.get("tool_calls") or []
        if not calls or not isinstance(json.loads(calls[0]["function"]["arguments"]), dict):
            tally.fail(kind, f"no valid tool call: {message}")
            return "failed"
    elif kind == "grounded":
        if "ember" not in reply or not isinstance(reply["ember"].get("abstained"), bool):
            tally.fail(kind, "no ember object")
            return "failed"
    elif not isinstance(message.get("content"), str) or usage.get("completion_tokens", 0) < 1:
        tally.fail(kind, f"bad shape: {reply}")
        return "failed"
    return "ok"


async def _client(
    base_url: str, args: argparse.Namespace, store: str, tally: Tally, until: float
) -> None:
    kinds = args.kinds
    weights = [WEIGHTS[KINDS.index(k)] for k in kinds]
    async with httpx.AsyncClient(base_url=base_url, timeout=args.request_timeout) as client:
        while time.monotonic() < until:
            kind = random.choices(kinds, weights)[0]
            started = time.monotonic()
            try:
                outcome = await _one(client, kind, args, store, tally)
            except (httpx.TransportError, json.JSONDecodeError, KeyError) as exc:
                tally.fail(kind, f"{type(exc).__name__}: {exc}")
                outcome = "failed"
            tally.outcomes[outcome] += 1
            tally.outcomes["requests"] += 1
            if outcome == "ok":
                tally.latencies[kind].append(time.monotonic() - started)


async def _load(base_url: str, args: argparse.Namespace, store: str, pid: int | None) -> Any:
    tally = Tally()
    peak = _footprint(pid) if pid else {}
    until = time.monotonic() + args.seconds
    tasks = [
        asyncio.create_task(_client(base_url, args, store, tally, until))
        for _ in range(args.clients)
    ]
    while not all(t.done() for t in tasks):
        await asyncio.sleep(2)
        if pid:
            now = _footprint(pid)
            peak = {k: max(peak[k], now[k]) for k in peak}
    await asyncio.gather(*tasks)
    return tally, peak


def _start(
    command: list[str], env: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:4]} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(1)
    process.kill()
    raise RuntimeError(f"{command[:4]} did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def _vector_store(base_url: str) -> str:
    with httpx.Client(base_url=base_url, timeout=300) as client:
        uploaded = client.post(
            "/v1/files",
            files={"file": ("notes.txt", DOCUMENT.encode(), "text/plain")},
            data={"purpose": "assistants"},
        ).json()
        store = client.post(
            "/v1/vector_stores", json={"name": "soak", "file_ids": [uploaded["id"]]}
        ).json()
        for _ in range(300):
            state = client.get(f"/v1/vector_stores/{store['id']}").json()
            if state["file_counts"]["in_progress"] == 0:
                return str(store["id"])
            time.sleep(1)
    raise RuntimeError("the vector store did not finish ingesting")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_ember(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    home = workdir / "ember-home"
    home.mkdir()
    (home / "ember.toml").write_text(
        f'preload = ["{args.model}", "{E5_ID}"]\nn_threads = {args.threads}\n'
        f"context_length = 2048\nprefix_cache_mb = {args.prefix_cache_mb}\n"
    )
    port = _free_port()
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
    command = [sys.executable, "-m", "ember", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = _start(command, env, port, home / "server.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        store = _vector_store(base_url)
        # Warm-up: every kind once (lazy loads: the guard's models, the grammar), then the
        # same load for --warmup seconds, so thread pools and caches have grown to their size
        # under this load before "start" is measured.
        asyncio.run(_warm(base_url, args, store, Tally()))
        warm = argparse.Namespace(**{**vars(args), "seconds": args.warmup})
        asyncio.run(_load(base_url, warm, store, None))
        time.sleep(args.settle)
        start = _footprint(process.pid)
        tally, peak = asyncio.run(_load(base_url, args, store, process.pid))
        time.sleep(args.settle)
        end = _footprint(process.pid)
        # More rounds of the same load: a leak grows again each round, a bounded cache
        # (the prefix cache, the guard's and the embedder's) does not.
        ends = [end]
        for _ in range(args.rounds - 1):
            more, more_peak = asyncio.run(_load(base_url, args, store, process.pid))
            _merge(tally, more)
            peak = {k: max(peak[k], more_peak[k]) for k in peak}
            time.sleep(args.settle)
            ends.append(_footprint(process.pid))
        alive = process.poll() is None
    finally:
        _stop(process)
    return {
        "tally": tally,
        "start": start,
        "peak": peak,
        "end": ends[-1],
        "ends": ends,
        "alive": alive,
    }


def _merge(into: Tally, other: Tally) -> None:
    for kind, values in other.latencies.items():
        into.latencies[kind].extend(values)
    into.outcomes.update(other.outcomes)
    for failure in other.failures:
        if len(into.failures) < 20:
            into.failures.append(failure)


async def _warm(base_url: str, args: argparse.Namespace, store: str, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=args.request_timeout) as client:
        for kind in KINDS:
            await _one(client, kind, args, store, tally)


def run_peer(args: argparse.Namespace, workdir: Path) -> dict[str, Any] | None:
    spec = next(s for s in embedded_models() if s.id == args.model)
    path = spec.resolve_path(Settings())
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(path),
        "--model_alias",
        args.model,
        "--n_threads",
        str(args.threads),
        "--n_ctx",
        "2048",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    try:
        process = _start(command, dict(os.environ), port, workdir / "peer.log")
    except RuntimeError as exc:
        print(f"llama_cpp.server did not start: {exc}", file=sys.stderr)
        return None
    # llama_cpp.server sends no usage chunk: a stream with content counts as answered.
    peer_args = argparse.Namespace(
        **{**vars(args), "kinds": ["chat-stream"], "disconnect": 1e9, "require_usage": False}
    )
    try:
        tally, peak = asyncio.run(_load(f"http://127.0.0.1:{port}", peer_args, "", process.pid))
    finally:
        _stop(process)
    return {"tally": tally, "peak": peak}


def report(args: argparse.Namespace, ember: dict[str, Any], peer: dict[str, Any] | None) -> int:
    console = Console()
    tally: Tally = ember["tally"]
    table = Table(title=f"Soak: {args.clients} clients, {args.seconds} s, model {args.model}")
    for column in ("server", "kind", "ok", "p50 s", "p99 s"):
        table.add_column(column)
    for kind in args.kinds:
        values = tally.latencies.get(kind, [])
        table.add_row(
            "ember",
            kind,
            str(len(values)),
            f"{_pct(values, 0.5):.2f}",
            f"{_pct(values, 0.99):.2f}",
        )
    if peer:
        values = peer["tally"].latencies.get("chat-stream", [])
        table.add_row(
            "llama_cpp.server",
            "chat-stream",
            str(len(values)),
            f"{_pct(values, 0.5):.2f}",
            f"{_pct(values, 0.99):.2f}",
        )
    console.print(table)
    totals = Table(title="Totals and footprint (server + engine processes)")
    for column in ("measure", "ember", "llama_cpp.server"):
        totals.add_column(column)
    peer_out: Counter[str] = peer["tally"].outcomes if peer else Counter()
    for name in ("requests", "ok", "shed", "disconnected", "failed"):
        totals.add_row(name, str(tally.outcomes[name]), str(peer_out[name]) if peer else "-")
    mib = 1024 * 1024
    start, peak, end = ember["start"], ember["peak"], ember["end"]
    rss_growth = (end["rss"] - start["rss"]) / start["rss"]
    totals.add_row(
        "RSS start/peak/end MiB",
        f"{start['rss'] / mib:.0f} / {peak['rss'] / mib:.0f} / {end['rss'] / mib:.0f}",
        f"- / {peer['peak']['rss'] / mib:.0f} / -" if peer else "-",
    )
    totals.add_row("RSS end vs start (target ≤ +5%)", f"{rss_growth:+.1%}", "-")
    ends = ember["ends"]
    if len(ends) > 1:
        totals.add_row(
            "RSS after each round MiB", " / ".join(f"{e['rss'] / mib:.0f}" for e in ends), "-"
        )
        later = (ends[-1]["rss"] - ends[0]["rss"]) / ends[0]["rss"]
        totals.add_row(f"RSS after round {len(ends)} vs round 1", f"{later:+.1%}", "-")
    totals.add_row("threads start/end", f"{start['threads']} / {end['threads']}", "-")
    totals.add_row("fds start/end", f"{start['fds']} / {end['fds']}", "-")
    totals.add_row("server alive after", str(ember["alive"]), "-")
    if peer:
        ours = statistics.median(tally.latencies.get("chat-stream") or [float("nan")])
        theirs = statistics.median(peer["tally"].latencies.get("chat-stream") or [float("nan")])
        totals.add_row("chat-stream p50 ratio (peer / ember)", f"{theirs / ours:.2f}", "")
    console.print(totals)
    for failure in tally.failures:
        console.print(f"[red]failure[/red] {failure}")
    for failure in peer["tally"].failures if peer else []:
        console.print(f"[yellow]peer failure[/yellow] {failure}")
    return 1 if tally.outcomes["failed"] or not ember["alive"] else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--disconnect", type=float, default=5, help="1 in N streams hang up")
    parser.add_argument("--settle", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=20, help="seconds of load before start")
    parser.add_argument("--model", default=SMOLLM2_ID)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--request-timeout", type=float, default=300)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--no-peer", action="store_true", help="skip llama_cpp.server")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of --seconds load, RSS taken after each"
    )
    parser.add_argument("--prefix-cache-mb", type=int, default=256, help="the server's setting")
    parser.add_argument("--seed", type=int, default=20261207)
    args = parser.parse_args()
    args.require_usage = True
    random.seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="ember-soak-") as tmp:
        ember = run_ember(args, Path(tmp))
        peer = None if args.no_peer else run_peer(args, Path(tmp))
        return report(args, ember, peer)


if __name__ == "__main__":
    sys.exit(main())
