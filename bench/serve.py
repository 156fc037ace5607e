"""Serving speed of Ember against llama.cpp on the same GGUF: one stream, then many.

For each embedded chat model, three engines answer the same greedy chat request, one at a
time (a second llama.cpp process on the machine would slow the first):

* ``ember``: ``python -m ember serve`` in a subprocess with its own ``EMBER_HOME``, the model
  preloaded, measured over HTTP with streaming chat completions;
* ``in-process``: ``llama_cpp.Llama.create_chat_completion(stream=True)`` in this process;
* ``llama_cpp.server``: ``python -m llama_cpp.server`` over HTTP, stock settings but for
  threads and context.

Time to first token (TTFT) runs from sending the request to the first chunk with content;
decode speed is ``(tokens - 1) / (last content chunk - first content chunk)``. Ember reports
its token count in ``usage`` (``stream_options.include_usage``); for the two llama.cpp paths
the content chunks are counted. Before each measured request a one-token request with another
prompt replaces the KV cache, so every measured request reads its whole prompt.

Then, with concurrency: eight different chats at 1, 4 and 8 concurrent streams, Ember
(continuous batching) against ``llama_cpp.server`` (which serves one request at a time):
aggregate decode tokens/s (all tokens over the span from the first content chunk to the last,
per round) and p50/p95 TTFT, next to the machine's memory bandwidth from a copy benchmark run
in the same process and the roofline ``bandwidth / model bytes``. Ember's greedy answers alone
and in a batch of eight are compared (batch-size-dependent rounding makes them drift), and its
prefix cache is measured as the TTFT of a second turn of a ~1,000-token conversation, cached
against cold. Last, ``llama_decode`` alone is timed in this process at 1 and 8 sequences (one
token each, Ember's context settings, ``bench/profile_step.py``): how much more a batch of 8
costs than one token bounds what any batching server can reach at 8 streams.

Run ``python bench/serve.py --help``. The exit status is non-zero only when something broke,
never because a target was missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import psutil
from profile_step import decode_ms_per_step  # bench/, next to this script
from rich.console import Console
from rich.table import Table

from ember.models.embedded import QWEN_ID, SMOLLM2_ID, embedded_models
from ember.settings import Settings

MODELS = (SMOLLM2_ID, QWEN_ID)
ENGINES = ("ember", "in-process", "llama_cpp.server")
RSS_HEADROOM = 400 * 1024 * 1024
DECODE_VS_IN_PROCESS = 0.97
DECODE_VS_LLAMA_SERVER = 1.0
START_TIMEOUT_S = 300
REQUEST_TIMEOUT_S = 600

# 60 prompt tokens with either chat template; asks for an answer far longer than
# max_tokens, since no engine here can be told to ignore the end-of-sequence token.
PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {
        "role": "user",
        "content": "Write a long, detailed guide to baking sourdough bread at home: the "
        "starter, mixing, folding, shaping, proofing and baking. Use at least twelve numbered "
        "steps and explain each one thoroughly.",
    },
]
# Shares only the template's first tokens with PROMPT, so it evicts PROMPT from the KV cache.
FLUSH = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Hello?"},
]


def fresh(messages: list[dict[str, str]], index: int) -> list[dict[str, str]]:
    """``messages`` opening with a run number, so no engine's cache holds any of its prefix
    but the chat template's first tokens (Ember keeps earlier prompts in its prefix cache)."""
    first, *rest = messages
    return [{**first, "content": f"[{index}] {first['content']}"}, *rest]


# Piped output would otherwise wrap at 80 columns and cut the model names.
console = Console(width=None if sys.stdout.isatty() else 140)


class BenchError(Exception):
    """Something kept the benchmark from measuring; the script exits with status 1."""


@dataclass
class Run:
    """One measured request."""

    ttft_s: float
    decode_tps: float
    tokens: int
    content_chunks: int
    text: str
    prompt_tokens: int | None = None
    first_at: float = math.nan  # perf_counter of the first and last content chunk
    last_at: float = math.nan


@dataclass
class EngineResult:
    """Every run of one engine on one model, and what it cost in memory."""

    engine: str
    command: list[str]
    runs: list[Run] = field(default_factory=list)
    rss_bytes: int | None = None

    def median(self, name: str) -> float:
        return statistics.median(getattr(run, name) for run in self.runs)


Chat = Callable[[list[dict[str, str]], int], Run]
# What an engine's context manager yields: how to chat, how it was started, its process id
# (None for the in-process engine, whose memory is this script's).
Handle = tuple[Chat, list[str], int | None]


def summarise(
    started: float, stamps: list[float], parts: list[str], usage: dict[str, int] | None
) -> Run:
    """A Run from the arrival time of each content chunk after ``started``."""
    if not stamps:
        return Run(math.nan, math.nan, 0, 0, "")
    count = len(stamps) if usage is None else usage["completion_tokens"]
    span = stamps[-1] - stamps[0]
    decode = (count - 1) / span if count > 1 and span > 0 else math.nan
    prompt_tokens = None if usage is None else usage["prompt_tokens"]
    return Run(
        stamps[0] - started,
        decode,
        count,
        len(stamps),
        "".join(parts),
        prompt_tokens,
        stamps[0],
        stamps[-1],
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children."""
    process = psutil.Process(pid)
    tree = [process, *process.children(recursive=True)]
    return sum(p.memory_info().rss for p in tree)


class HttpChat:
    """Streaming chat completions against an OpenAI-compatible server on loopback."""

    def __init__(self, base_url: str, extra: dict[str, Any]) -> None:
        self.url = f"{base_url}/v1/chat/completions"
        self.extra = extra
        self.client = httpx.Client(timeout=REQUEST_TIMEOUT_S)

    def __call__(self, messages: list[dict[str, str]], max_tokens: int) -> Run:
        body = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            **self.extra,
        }
        stamps: list[float] = []
        parts: list[str] = []
        usage: dict[str, int] | None = None
        started = time.perf_counter()
        with self.client.stream("POST", self.url, json=body) as response:
            if response.status_code != 200:
                response.read()
                raise BenchError(f"{self.url} answered {response.status_code}: {response.text}")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                now = time.perf_counter()
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    raise BenchError(f"{self.url} sent an error frame: {chunk['error']}")
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices", []):
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        stamps.append(now)
                        parts.append(content)
        return summarise(started, stamps, parts, usage)

    def close(self) -> None:
        self.client.close()


@contextmanager
def subprocess_server(
    command: list[str], env: dict[str, str], log_path: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until ``ready_url`` answers 200, and always stop it."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise BenchError(
                    f"{command[2]} exited with status {process.returncode} while starting:\n"
                    f"{log_path.read_text(errors='replace')[-3000:]}"
                )
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{command[2]} did not start in {START_TIMEOUT_S} s.")
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def ember_engine(
    model_id: str, threads: int, n_ctx: int, home: Path, extra_config: str = ""
) -> Iterator[Handle]:
    config = home / "ember.toml"
    config.write_text(
        f'preload = ["{model_id}"]\n'
        f'default_model = "{model_id}"\n'
        f"n_threads = {threads}\n"
        f"context_length = {n_ctx}\n" + extra_config
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.update(EMBER_HOME=str(home), EMBER_CONFIG=str(config))
    port = free_port()
    command = [sys.executable, "-m", "ember", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    log_path = home / f"ember-{model_id}.log"
    with subprocess_server(command, env, log_path, f"{base}/healthz") as process:
        chat = HttpChat(base, {"model": model_id, "stream_options": {"include_usage": True}})
        try:
            yield chat, command, process.pid
        finally:
            chat.close()


@contextmanager
def llama_server_engine(
    model_id: str, path: Path, threads: int, n_ctx: int, home: Path
) -> Iterator[Handle]:
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(path)]
    command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    command += ["--n_ctx", str(n_ctx), "--host", "127.0.0.1", "--port", str(port)]
    # By default a new request interrupts the running one; concurrent clients must queue.
    command += ["--interrupt_requests", "False"]
    base = f"http://127.0.0.1:{port}"
    log_path = home / f"llama_cpp.server-{model_id}.log"
    with subprocess_server(command, dict(os.environ), log_path, f"{base}/v1/models") as process:
        # The server's own default repeat_penalty is 1.1; 1.0 keeps decoding greedy and equal
        # to the other two engines.
        chat = HttpChat(base, {"model": model_id, "repeat_penalty": 1.0})
        try:
            yield chat, command, process.pid
        finally:
            chat.close()


@contextmanager
def in_process_engine(path: Path, threads: int, n_ctx: int) -> Iterator[Handle]:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )

    def chat(messages: list[dict[str, str]], max_tokens: int) -> Run:
        stamps: list[float] = []
        parts: list[str] = []
        started = time.perf_counter()
        for chunk in llm.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_tokens,
            temperature=0.0,
            stream=True,
        ):
            now = time.perf_counter()
            content = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
            if content:
                stamps.append(now)
                parts.append(content)
        return summarise(started, stamps, parts, None)

    command = [f"llama_cpp.Llama({path.name}, n_threads={threads}, n_ctx={n_ctx})"]
    try:
        yield chat, command, None
    finally:
        llm.close()


def measure(
    name: str, engine: AbstractContextManager[Handle], runs: int, max_tokens: int
) -> EngineResult:
    with engine as (chat, command, pid):
        result = EngineResult(name, command)
        chat(PROMPT, max_tokens)  # warm-up: pages the weights in, builds caches
        for index in range(runs):
            chat(FLUSH, 1)
            run = chat(fresh(PROMPT, index), max_tokens)
            if not run.content_chunks:
                raise BenchError(f"{name} answered the benchmark prompt without any content.")
            result.runs.append(run)
        if pid is not None:
            result.rss_bytes = rss_bytes(pid)
    return result


# Concurrency: eight different questions under the same system prompt, decoded alone (1
# stream), four at a time and eight at a time.
LEVELS = (1, 4, 8)
TOPICS = (
    "baking sourdough bread at home",
    "repairing a bicycle puncture",
    "planting a vegetable garden",
    "learning to play the guitar",
    "training for a first marathon",
    "brewing coffee with a French press",
    "painting a room in an apartment",
    "preparing for a job interview",
)
CONCURRENT_PROMPTS = [
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": f"Write a long, detailed guide to {topic}. Use at least twelve numbered "
            "steps and explain each one thoroughly.",
        },
    ]
    for topic in TOPICS
]
AGGREGATE_VS_LLAMA_SERVER_AT_8 = 3.0
PREFIX_TTFT_RATIO = 0.3


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = share * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def concurrent_round(chat: Chat, prompts: list[list[dict[str, str]]], max_tokens: int) -> list[Run]:
    """Send ``prompts`` at once, one thread each; every stream's Run."""
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        futures = [pool.submit(chat, prompt, max_tokens) for prompt in prompts]
        return [future.result() for future in futures]


def measure_concurrency(
    name: str, engine: AbstractContextManager[Handle], max_tokens: int
) -> dict[str, Any]:
    """Every level: the eight prompts in rounds of ``level`` streams.

    Each level numbers its prompts afresh, so no level finds the previous one's prompts in a
    cache. Then the single-stream prompts run again as one batch of eight: the answers of
    that batch against the single-stream ones measure the greedy drift.
    """
    levels: dict[str, Any] = {}
    with engine as (chat, _command, _pid):
        concurrent_round(chat, CONCURRENT_PROMPTS[:2], 4)  # warm-up
        for level in LEVELS:
            runs: list[Run] = []
            span = 0.0
            for start in range(0, len(CONCURRENT_PROMPTS), level):
                chat(FLUSH, 1)
                prompts = [fresh(p, level) for p in CONCURRENT_PROMPTS[start : start + level]]
                batch = concurrent_round(chat, prompts, max_tokens)
                if any(not run.content_chunks for run in batch):
                    raise BenchError(f"{name} answered a concurrent request without content.")
                span += max(r.last_at for r in batch) - min(r.first_at for r in batch)
                runs.extend(batch)
            tokens = sum(run.tokens for run in runs)
            ttfts = [run.ttft_s for run in runs]
            levels[str(level)] = {
                "aggregate_tps": ratio(tokens, span),
                "ttft_p50_s": percentile(ttfts, 0.5),
                "ttft_p95_s": percentile(ttfts, 0.95),
                "tokens": tokens,
                "texts": [run.text for run in runs],
            }
            console.print(
                f"  {name} x{level}: {levels[str(level)]['aggregate_tps']:.1f} tok/s aggregate, "
                f"TTFT p50 {levels[str(level)]['ttft_p50_s'] * 1000:.0f} ms"
            )
        again = concurrent_round(chat, [fresh(p, 1) for p in CONCURRENT_PROMPTS], max_tokens)
        levels["drift_texts"] = [run.text for run in again]
    return levels


def greedy_drift(alone: list[str], batched: list[str]) -> dict[str, Any]:
    """How far greedy answers decoded alone and in a batch of eight agree (characters)."""
    shared = [
        next((i for i, (a, b) in enumerate(zip(x, y, strict=False)) if a != b), min(len(x), len(y)))
        for x, y in zip(alone, batched, strict=True)
    ]
    return {
        "identical": sum(x == y for x, y in zip(alone, batched, strict=True)),
        "of": len(alone),
        "first_difference_chars": [
            None if x == y else n for x, y, n in zip(alone, batched, shared, strict=True)
        ],
        "mean_agreeing_share": statistics.mean(
            n / max(1, len(x)) for x, n in zip(alone, shared, strict=True)
        ),
    }


def measure_prefix_cache(engine: AbstractContextManager[Handle]) -> dict[str, Any]:
    """TTFT of a second turn in a ~1,000-token conversation: cold vs its first turn cached."""
    rules = " ".join(
        f"Rule {i}: when asked about topic number {i}, answer with care and cite the rule."
        for i in range(55)
    )

    def conversation(nonce: str, turns: int) -> list[dict[str, str]]:
        messages = [
            {"role": "system", "content": f"Session {nonce}. You are a support agent. {rules}"},
            {"role": "user", "content": "Summarise rule 3 in one sentence."},
        ]
        if turns == 2:
            messages += [
                {"role": "assistant", "content": "Rule 3 asks for careful, cited answers."},
                {"role": "user", "content": "And rule 7?"},
            ]
        return messages

    with engine as (chat, _command, _pid):
        chat(FLUSH, 1)
        cold = [chat(conversation(f"cold-{i}", 2), 8) for i in range(3)]
        warm = []
        for i in range(3):
            chat(conversation(f"warm-{i}", 1), 8)
            warm.append(chat(conversation(f"warm-{i}", 2), 8))
    cold_ttft = statistics.median(run.ttft_s for run in cold)
    warm_ttft = statistics.median(run.ttft_s for run in warm)
    return {
        "prompt_tokens": cold[0].prompt_tokens,
        "cold_ttft_s": cold_ttft,
        "cached_ttft_s": warm_ttft,
        "ratio": ratio(warm_ttft, cold_ttft),
    }


def memory_bandwidth_bytes_per_s(size: int = 256 * 2**20, repeats: int = 5) -> float:
    """A simple copy benchmark (numpy, one thread): bytes read plus written per second."""
    import numpy as np

    source = np.ones(size // 8)
    target = np.empty_like(source)
    np.copyto(target, source)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return 2 * size / best


def check_llama_server_installed() -> None:
    missing = [m for m in ("sse_starlette", "starlette_context") if find_spec(m) is None]
    if missing:
        raise BenchError(
            f"llama_cpp.server needs {', '.join(missing)}. Install them without touching "
            "llama-cpp-python: pip install --no-deps sse-starlette 'starlette-context>=0.3.6,<0.4'"
        )


def model_paths(model_ids: list[str], home: Path) -> dict[str, Path]:
    """The GGUF of each model, joined (Qwen) into ``home`` so Ember's server reuses it."""
    specs = {spec.id: spec for spec in embedded_models()}
    settings = Settings(home=home)
    return {model_id: specs[model_id].resolve_path(settings) for model_id in model_ids}


def context_for(model_id: str, n_ctx: int) -> int:
    """Ember caps the context at the model's own; the other engines get the same."""
    spec = next(spec for spec in embedded_models() if spec.id == model_id)
    return min(n_ctx, spec.context_length) if spec.context_length else n_ctx


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def bench_model(model_id: str, path: Path, args: argparse.Namespace, home: Path) -> dict[str, Any]:
    n_ctx = context_for(model_id, args.n_ctx)
    console.print(
        f"[bold]{model_id}[/bold]: {path} ({path.stat().st_size / 2**20:.0f} MiB); "
        f"each engine alone, n_threads={args.threads}, n_ctx={n_ctx}"
    )
    engines = {
        "ember": lambda: ember_engine(model_id, args.threads, n_ctx, home),
        "in-process": lambda: in_process_engine(path, args.threads, n_ctx),
        "llama_cpp.server": lambda: llama_server_engine(model_id, path, args.threads, n_ctx, home),
    }
    results: dict[str, EngineResult] = {}
    for name, engine in engines.items():
        # No spinner here: its refresh thread would share the CPU with the engine measured.
        results[name] = measure(name, engine(), args.runs, args.max_tokens)
        console.print(
            f"  {name}: TTFT {results[name].median('ttft_s') * 1000:.0f} ms, "
            f"decode {results[name].median('decode_tps'):.1f} tok/s"
        )
    ember, local, server = (results[name] for name in ENGINES)
    file_bytes = path.stat().st_size
    concurrency = {
        "ember": measure_concurrency(
            "ember", ember_engine(model_id, args.threads, n_ctx, home), args.concurrent_tokens
        ),
        "llama_cpp.server": measure_concurrency(
            "llama_cpp.server",
            llama_server_engine(model_id, path, args.threads, n_ctx, home),
            args.concurrent_tokens,
        ),
    }
    prefix = measure_prefix_cache(ember_engine(model_id, args.threads, n_ctx, home))
    console.print(
        f"  prefix cache: second-turn TTFT {prefix['cached_ttft_s'] * 1000:.0f} ms vs cold "
        f"{prefix['cold_ttft_s'] * 1000:.0f} ms ({prefix['prompt_tokens']} prompt tokens)"
    )
    # What one batched llama_decode costs at 1 and 8 sequences, nothing else: the ceiling
    # of the aggregate at 8 streams whatever the server around it does.
    step_ms = decode_ms_per_step(path, args.threads, n_ctx, (1, LEVELS[-1]))
    console.print(
        f"  decode only: {step_ms[1]:.1f} ms/step at 1 sequence, "
        f"{step_ms[LEVELS[-1]]:.1f} ms/step at {LEVELS[-1]}"
    )
    top = str(LEVELS[-1])
    aggregate_ratio = ratio(
        concurrency["ember"][top]["aggregate_tps"],
        concurrency["llama_cpp.server"][top]["aggregate_tps"],
    )
    drift = greedy_drift(concurrency["ember"]["1"]["texts"], concurrency["ember"]["drift_texts"])
    ratios = {
        "decode_vs_in_process": ratio(ember.median("decode_tps"), local.median("decode_tps")),
        "decode_vs_llama_cpp_server": ratio(
            ember.median("decode_tps"), server.median("decode_tps")
        ),
        "ttft_vs_in_process": ratio(ember.median("ttft_s"), local.median("ttft_s")),
        "ttft_vs_llama_cpp_server": ratio(ember.median("ttft_s"), server.median("ttft_s")),
    }
    rss_limit = file_bytes + RSS_HEADROOM
    targets = {
        "decode_vs_in_process": ratios["decode_vs_in_process"] >= DECODE_VS_IN_PROCESS,
        "decode_vs_llama_cpp_server": ratios["decode_vs_llama_cpp_server"]
        >= DECODE_VS_LLAMA_SERVER,
        "rss": ember.rss_bytes is not None and ember.rss_bytes <= rss_limit,
        "aggregate_vs_llama_cpp_server_at_8": aggregate_ratio >= AGGREGATE_VS_LLAMA_SERVER_AT_8,
        "prefix_cache_ttft": prefix["ratio"] <= PREFIX_TTFT_RATIO,
    }
    ratios["aggregate_vs_llama_cpp_server_at_8"] = aggregate_ratio
    return {
        "model": model_id,
        "path": str(path),
        "file_bytes": file_bytes,
        "n_ctx": n_ctx,
        "prompt_tokens": ember.runs[0].prompt_tokens,
        "rss_limit_bytes": rss_limit,
        "engines": {name: asdict(result) for name, result in results.items()},
        "medians": {
            name: {
                "ttft_s": result.median("ttft_s"),
                "decode_tps": result.median("decode_tps"),
                "tokens": result.median("tokens"),
            }
            for name, result in results.items()
        },
        "ratios": ratios,
        "targets_met": targets,
        "same_text": len({r.runs[0].text for r in results.values()}) == 1,
        "concurrency": concurrency,
        "prefix_cache": prefix,
        "greedy_drift": drift,
        "decode_step_ms": step_ms,
        "decode_ceiling_vs_llama_cpp_server_at_8": ratio(
            LEVELS[-1] * 1000 / step_ms[LEVELS[-1]],
            concurrency["llama_cpp.server"][top]["aggregate_tps"],
        ),
    }


def json_safe(value: Any) -> Any:
    """NaN (a decode speed from a single token) as null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def mib(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f} MiB"


def verdict(ok: bool) -> str:
    return "[green]pass[/green]" if ok else "[red]FAIL[/red]"


def print_tables(report: dict[str, Any]) -> None:
    config = report["config"]
    speeds = Table(
        title=f"Single-stream chat, one engine process at a time, n_threads={config['threads']}, "
        f"max_tokens={config['max_tokens']}, median of {config['runs']} run(s)",
        caption="Prompt tokens (Ember's usage): "
        + ", ".join(f"{row['model']} {row['prompt_tokens']}" for row in report["models"])
        + ". RSS after the runs, server process only.",
    )
    for column in ("model", "engine", "tokens out", "TTFT ms", "decode tok/s", "RSS"):
        speeds.add_column(column, justify="left" if column in ("model", "engine") else "right")
    checks = Table(title="Ember against its targets")
    for column in ("model", "check", "value", "target", "result"):
        checks.add_column(column, justify="left" if column in ("model", "check") else "right")
    for row in report["models"]:
        for name in ENGINES:
            engine = row["engines"][name]
            counts = sorted({run["tokens"] for run in engine["runs"]})
            speeds.add_row(
                row["model"],
                name,
                "/".join(str(c) for c in counts),
                f"{row['medians'][name]['ttft_s'] * 1000:.0f}",
                f"{row['medians'][name]['decode_tps']:.1f}",
                mib(engine["rss_bytes"]),
            )
        speeds.add_section()
        ratios, met = row["ratios"], row["targets_met"]
        rss = row["engines"]["ember"]["rss_bytes"]
        rss_target = f"≤ {mib(row['rss_limit_bytes'])} (file {mib(row['file_bytes'])} + 400 MiB)"
        for check, value, target, result in (
            (
                "decode, Ember / in-process",
                f"{ratios['decode_vs_in_process']:.3f}×",
                f"≥ {DECODE_VS_IN_PROCESS:.2f}×",
                verdict(met["decode_vs_in_process"]),
            ),
            (
                "decode, Ember / llama_cpp.server",
                f"{ratios['decode_vs_llama_cpp_server']:.3f}×",
                f"≥ {DECODE_VS_LLAMA_SERVER:.2f}×",
                verdict(met["decode_vs_llama_cpp_server"]),
            ),
            ("TTFT, Ember / in-process", f"{ratios['ttft_vs_in_process']:.2f}×", "—", ""),
            (
                "TTFT, Ember / llama_cpp.server",
                f"{ratios['ttft_vs_llama_cpp_server']:.2f}×",
                "—",
                "",
            ),
            ("Ember server RSS", mib(rss), rss_target, verdict(met["rss"])),
            (
                "aggregate at 8 streams, Ember / llama_cpp.server",
                f"{ratios['aggregate_vs_llama_cpp_server_at_8']:.2f}×",
                f"≥ {AGGREGATE_VS_LLAMA_SERVER_AT_8:.1f}×",
                verdict(met["aggregate_vs_llama_cpp_server_at_8"]),
            ),
            (
                f"decode only (in-process llama_decode, no sampling/HTTP): a step of "
                f"{LEVELS[-1]} sequences / a step of 1; its tok/s / llama_cpp.server at 8",
                f"{row['decode_step_ms'][LEVELS[-1]] / row['decode_step_ms'][1]:.2f}× "
                f"({row['decode_step_ms'][LEVELS[-1]]:.1f} / {row['decode_step_ms'][1]:.1f} ms); "
                f"{row['decode_ceiling_vs_llama_cpp_server_at_8']:.2f}×",
                "ceiling of the row above",
                "",
            ),
            (
                "second-turn TTFT, cached / cold "
                f"({row['prefix_cache']['prompt_tokens']} prompt tokens)",
                f"{row['prefix_cache']['ratio']:.2f}× "
                f"({row['prefix_cache']['cached_ttft_s'] * 1000:.0f} / "
                f"{row['prefix_cache']['cold_ttft_s'] * 1000:.0f} ms)",
                f"≤ {PREFIX_TTFT_RATIO:.1f}×",
                verdict(met["prefix_cache_ttft"]),
            ),
            (
                "greedy alone vs in a batch of 8: identical answers",
                f"{row['greedy_drift']['identical']}/{row['greedy_drift']['of']} "
                f"(agree on {row['greedy_drift']['mean_agreeing_share']:.0%} of the text)",
                "—",
                "",
            ),
        ):
            checks.add_row(row["model"], check, value, target, result)
        checks.add_section()
    console.print(speeds)
    console.print(concurrency_table(report))
    console.print(checks)
    for row in report["models"]:
        if not row["same_text"]:
            console.print(
                f"[yellow]Note:[/yellow] the engines' answers for {row['model']} differ "
                "(same greedy request); compare the token counts above."
            )


def concurrency_table(report: dict[str, Any]) -> Table:
    config, machine = report["config"], report["machine"]
    bandwidth = machine["copy_bandwidth_bytes_per_s"]
    table = Table(
        title=f"Concurrent streams, {len(CONCURRENT_PROMPTS)} chats per level in rounds of "
        f"1/4/8, max_tokens={config['concurrent_tokens']}, n_threads={config['threads']}",
        caption=f"Memory bandwidth (numpy copy, read + write, one thread): "
        f"{bandwidth / 1e9:.1f} GB/s. Roofline = bandwidth / model bytes (single-stream "
        "decode can at most reach it; a batched step yields one token per stream).",
    )
    for column in ("model", "engine", "streams", "aggregate tok/s", "× roofline", "TTFT p50 ms"):
        table.add_column(column, justify="left" if column in ("model", "engine") else "right")
    table.add_column("TTFT p95 ms", justify="right")
    for row in report["models"]:
        roofline = bandwidth / row["file_bytes"]
        for engine, levels in row["concurrency"].items():
            for level in map(str, LEVELS):
                numbers = levels[level]
                table.add_row(
                    row["model"],
                    engine,
                    level,
                    f"{numbers['aggregate_tps']:.1f}",
                    f"{numbers['aggregate_tps'] / roofline:.2f}",
                    f"{numbers['ttft_p50_s'] * 1000:.0f}",
                    f"{numbers['ttft_p95_s'] * 1000:.0f}",
                )
        table.add_section()
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp n_threads (all engines)")
    parser.add_argument("--max-tokens", type=int, default=128, help="max_tokens per request")
    parser.add_argument("--runs", type=int, default=3, help="measured requests per engine")
    parser.add_argument(
        "--n-ctx", type=int, default=8192, help="context window (Ember's default context_length)"
    )
    parser.add_argument(
        "--concurrent-tokens", type=int, default=64, help="max_tokens per concurrent stream"
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.max_tokens < 2 or args.runs < 1:
        parser.error("--threads and --runs must be at least 1, --max-tokens at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {
        "config": {
            "models": args.models,
            "threads": args.threads,
            "max_tokens": args.max_tokens,
            "runs": args.runs,
            "n_ctx": args.n_ctx,
            "concurrent_tokens": args.concurrent_tokens,
            "prompt": PROMPT,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "ember": version("ember"),
            "llama_cpp_python": version("llama_cpp_python"),
            "copy_bandwidth_bytes_per_s": memory_bandwidth_bytes_per_s(),
        },
        "models": [],
    }
    try:
        with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
            home = Path(tmp)
            check_llama_server_installed()
            with console.status("Locating the models (joining Qwen's chunks)"):
                paths = model_paths(args.models, home)
            for model_id in args.models:
                report["models"].append(bench_model(model_id, paths[model_id], args, home))
    except BenchError as exc:
        console.print(f"[red]Error:[/red] {exc}", highlight=False)
        return 1
    print_tables(report)
    if args.json is not None:
        args.json.write_text(json.dumps(json_safe(report), indent=2, ensure_ascii=False))
        console.print(f"Raw numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
