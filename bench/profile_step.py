"""Where a batched decode step's time goes, in this process, on llama.cpp's low-level API.

For n = 1, 2, 4, 8 sequences (one token each per step) it times ``llama_decode`` alone, then
the per-sequence work Ember does after it: sampling through a llama.cpp sampler chain (greedy,
and top-k/top-p/min-p/temperature/seeded distribution over the full vocabulary), reading the
logits into numpy, logprobs, and turning a token into text. Context settings are the engine's
(``kv_unified``, ``n_ctx``, ``n_batch``) and can be varied from the command line.

Run ``python bench/profile_step.py --help``; run it under ``flock /tmp/ember-bench.lock``.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaContext, LlamaModel, LlamaSampler

from ember.models.embedded import QWEN_ID, SMOLLM2_ID, embedded_models
from ember.settings import Settings


def model_path(model_id: str) -> Path:
    settings = Settings()
    spec = next(m for m in embedded_models() if m.id == model_id)
    return Path(spec.resolve_path(settings))


def make_context(model: LlamaModel, args: argparse.Namespace, n_seq: int) -> LlamaContext:
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = args.n_ctx
    params.n_batch = args.n_batch
    params.n_ubatch = args.n_ubatch
    params.n_threads = args.threads
    params.n_threads_batch = args.threads
    params.n_seq_max = n_seq
    params.kv_unified = not args.split_kv
    params.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        if args.flash_attn
        else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    params.no_perf = True
    return LlamaContext(model=model, params=params, verbose=False)


def fill(batch: Any, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq
    batch.logits[i] = logits


def decode_ms_per_step(
    path: Path, threads: int, n_ctx: int, sequences: tuple[int, ...], steps: int = 16
) -> dict[int, float]:
    """Median time of one ``llama_decode`` advancing n sequences by a token, for each n.

    Engine settings (kv_unified, n_batch 512, no flash attention); each sequence first reads
    the same 120-token prompt. Nothing but the decode is timed: the step's ceiling.
    """
    args = argparse.Namespace(
        n_ctx=n_ctx, n_batch=512, n_ubatch=512, threads=threads, split_kv=False, flash_attn=False
    )
    model = LlamaModel(
        path_model=str(path), params=llama_cpp.llama_model_default_params(), verbose=False
    )
    ctx = make_context(model, args, max(sequences))
    batch = llama_cpp.llama_batch_init(512, 0, 1)
    memory = llama_cpp.llama_get_memory(ctx.ctx)
    base = model.tokenize(b"Write a long, detailed guide to baking sourdough bread.", True, False)
    prompt = (base * 20)[:120]
    result: dict[int, float] = {}
    try:
        for n in sequences:
            llama_cpp.llama_memory_clear(memory, True)
            for seq in range(n):
                for i, tok in enumerate(prompt):
                    fill(batch, i, tok, i, seq, i == len(prompt) - 1)
                batch.n_tokens = len(prompt)
                if llama_cpp.llama_decode(ctx.ctx, batch) != 0:
                    raise RuntimeError("llama_decode failed")
            times: list[float] = []
            for step in range(steps + 2):
                pos = len(prompt) + step
                for seq in range(n):
                    fill(batch, seq, prompt[(pos + seq) % len(prompt)], pos, seq, True)
                batch.n_tokens = n
                t0 = time.perf_counter()
                if llama_cpp.llama_decode(ctx.ctx, batch) != 0:
                    raise RuntimeError("llama_decode failed")
                llama_cpp.llama_synchronize(ctx.ctx)
                if step >= 2:
                    times.append(time.perf_counter() - t0)
            result[n] = statistics.median(times) * 1000
    finally:
        llama_cpp.llama_batch_free(batch)
        ctx.close()
        model.close()
    return result


def profile(model_id: str, args: argparse.Namespace) -> None:
    path = model_path(model_id)
    model = LlamaModel(
        path_model=str(path), params=llama_cpp.llama_model_default_params(), verbose=False
    )
    n_vocab = model.n_vocab()
    vocab = model.vocab
    print(f"\n== {model_id} ({path.stat().st_size / 2**20:.0f} MiB, vocab {n_vocab}) ==")
    print(
        f"n_ctx={args.n_ctx} n_batch={args.n_batch} n_ubatch={args.n_ubatch} "
        f"threads={args.threads} prompt={args.prompt_tokens} "
        f"kv_unified={not args.split_kv} flash_attn={args.flash_attn}"
    )
    ctx = make_context(model, args, 8)
    batch = llama_cpp.llama_batch_init(512, 0, 1)
    memory = llama_cpp.llama_get_memory(ctx.ctx)
    base = model.tokenize(
        b"Write a long, detailed guide to baking sourdough bread at home.", True, False
    )
    prompt = (base * 10)[: args.prompt_tokens]
    for n in args.ns:
        llama_cpp.llama_memory_clear(memory, True)
        # prefill every sequence, one decode each
        for seq in range(n):
            for i, tok in enumerate(prompt):
                fill(batch, i, tok, i, seq, i == len(prompt) - 1)
            batch.n_tokens = len(prompt)
            assert llama_cpp.llama_decode(ctx.ctx, batch) == 0
        pos = len(prompt)
        decode_ms: list[float] = []
        for step in range(args.steps + 3):
            for seq in range(n):
                fill(batch, seq, prompt[(pos + seq) % len(prompt)], pos, seq, True)
            batch.n_tokens = n
            t0 = time.perf_counter()
            assert llama_cpp.llama_decode(ctx.ctx, batch) == 0
            llama_cpp.llama_synchronize(ctx.ctx)
            if step >= 3:
                decode_ms.append((time.perf_counter() - t0) * 1000)
            pos += 1
        dec = statistics.median(decode_ms)
        best = min(decode_ms)
        # per-sequence work, measured on the last step's outputs
        timings = per_sequence_costs(ctx, vocab, n_vocab, n, args.repeats)
        line = (
            f"n={n}: llama_decode median {dec:6.2f} min {best:6.2f} ms/step "
            f"({best / n:5.2f} ms/token at the min)"
        )
        extra = " | ".join(f"{k} {v * n:5.2f}" for k, v in timings.items())
        print(line + " | per step, ms: " + extra)
    llama_cpp.llama_batch_free(batch)
    ctx.close()
    model.close()


def per_sequence_costs(
    ctx: LlamaContext, vocab: Any, n_vocab: int, n: int, repeats: int
) -> dict[str, float]:
    """Milliseconds per sequence of each kind of post-decode work."""

    def timed(fn: Any) -> float:
        t0 = time.perf_counter()
        for _ in range(repeats):
            for i in range(n):
                fn(i)
        return (time.perf_counter() - t0) * 1000 / (repeats * n)

    greedy = LlamaSampler()
    greedy.add_greedy()
    chain = LlamaSampler()
    chain.add_top_k(40)
    chain.add_top_p(0.95, 1)
    chain.add_min_p(0.05, 1)
    chain.add_temp(0.8)
    chain.add_dist(1234)
    default = LlamaSampler()  # Ember's defaults: temperature 1, no top-k/top-p/min-p
    default.add_temp(1.0)
    default.add_dist(1234)
    full = LlamaSampler()
    full.add_top_p(0.95, 1)
    full.add_temp(0.8)
    full.add_dist(1234)
    penalties = LlamaSampler()
    penalties.add_penalties(n_vocab, 64, 1.1, 0.0, 0.0)
    penalties.add_greedy()

    def logits(i: int) -> np.ndarray[Any, Any]:
        pointer = llama_cpp.llama_get_logits_ith(ctx.ctx, i)
        buffer = (ctypes.c_float * n_vocab).from_address(ctypes.addressof(pointer.contents))
        return np.ctypeslib.as_array(buffer)

    def logprob(i: int) -> None:
        lg = logits(i)
        finite = np.where(np.isfinite(lg), lg, -np.inf).astype(np.float64)
        peak = finite.max()
        log_z = peak + np.log(np.exp(finite - peak).sum())
        best = np.argpartition(-finite, 5)[:5]
        best[np.argsort(-finite[best])]
        _ = log_z

    buf = ctypes.create_string_buffer(256)

    def piece(i: int) -> None:
        llama_cpp.llama_token_to_piece(vocab, 1000 + i, buf, 256, 0, False)

    result = {
        "greedy": timed(lambda i: llama_cpp.llama_sampler_sample(greedy.sampler, ctx.ctx, i)),
        "topk40-chain": timed(lambda i: llama_cpp.llama_sampler_sample(chain.sampler, ctx.ctx, i)),
        "temp1+dist": timed(lambda i: llama_cpp.llama_sampler_sample(default.sampler, ctx.ctx, i)),
        "top_p-no-topk": timed(lambda i: llama_cpp.llama_sampler_sample(full.sampler, ctx.ctx, i)),
        "penalties+greedy": timed(
            lambda i: llama_cpp.llama_sampler_sample(penalties.sampler, ctx.ctx, i)
        ),
        "logits-view": timed(logits),
        "logprobs(top5)": timed(logprob),
        "piece": timed(piece),
    }
    for s in (greedy, chain, default, full, penalties):
        s.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[SMOLLM2_ID, QWEN_ID])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--n-ubatch", type=int, default=512)
    parser.add_argument("--flash-attn", action="store_true")
    parser.add_argument("--split-kv", action="store_true", help="kv_unified = false")
    parser.add_argument("--prompt-tokens", type=int, default=120, help="per sequence")
    parser.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8], help="sequences")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    llama_cpp.llama_backend_init()
    from llama_cpp._logger import set_verbose

    set_verbose(False)
    for model_id in args.models:
        profile(model_id, args)


if __name__ == "__main__":
    main()
