"""Continuous batching for the llama.cpp engine: one scheduler thread per loaded model.

Every step advances every active sequence by one token in a single ``llama_decode`` over a
multi-sequence batch (decoding on a CPU is bound by memory bandwidth: reading the weights once
per step costs the same for one sequence or eight). Requests wait in a bounded queue and join
between steps; their prompts are read in chunks of ``prefill_chunk_tokens`` while others decode,
so a long prompt does not stall running streams. A finished or cancelled sequence leaves at once.

Each sequence has its own llama.cpp sampler chain (its own seed) and, for constrained output,
its own llguidance mask; a sequence's logits depend only on its own tokens (the attention mask
keeps sequences apart), so no request can influence another.

The KV cells of a finished sequence stay behind as a prefix cache (least recently used first
out, bounded by ``prefix_cache_mb``): a new request takes over the cached sequence that shares
the longest token prefix with it and reads only the rest.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.core.types import FinishReason, GenerationChunk, TokenLogprob
from ember.engines.base import BatchStats
from ember.errors import EngineError, ServerOverloadedError

if TYPE_CHECKING:
    from ember.engines.grammar import TokenMask

logger = logging.getLogger(__name__)

Emit = Callable[[GenerationChunk | BaseException], None]
STEP_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
_RATE_WINDOW_S = 10.0


@dataclass(eq=False)
class SequenceRequest:
    """One generation: its prompt, sampling state and where its chunks go."""

    tokens: list[int]
    max_tokens: int
    sampler: Any  # llama_cpp._internals.LlamaSampler, owned (closed) by the scheduler
    mask: TokenMask | None
    top_logprobs: int | None  # None: no logprobs
    cancel: threading.Event
    emit: Emit
    produced: int = 0
    pending: int | None = None  # sampled, emitted, not yet in the KV cache
    slot: Slot | None = None
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )


@dataclass(eq=False)
class Slot:
    """One llama.cpp sequence id and the tokens its KV cells hold (positions 0..n-1)."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    owner: SequenceRequest | None = None
    last_used: float = 0.0


class TokenTools:
    """What the scheduler needs from the engine: token text, logprobs, end of generation."""

    def piece(self, token: int) -> bytes:
        raise NotImplementedError

    def logprob(self, logits: np.ndarray[Any, Any], token: int, top: int) -> TokenLogprob:
        raise NotImplementedError

    def is_eog(self, token: int) -> bool:
        raise NotImplementedError


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class BatchScheduler:
    """Owns a llama.cpp context with ``n_slots`` sequences and decodes them together."""

    def __init__(
        self,
        *,
        llama_cpp: Any,
        ctx: Any,
        n_vocab: int,
        tools: TokenTools,
        pool_cells: int,
        n_batch: int,
        max_active: int,
        max_queued: int,
        prefill_chunk: int,
        cache_tokens: int,
        name: str,
    ) -> None:
        self._ll = llama_cpp
        self._ctx = ctx
        self._n_vocab = n_vocab
        self._tools = tools
        self._pool = pool_cells
        self._n_batch = n_batch
        self._max_active = max_active
        self._max_queued = max_queued
        self._chunk = min(prefill_chunk, n_batch)
        self._cache_tokens = cache_tokens
        self._memory = llama_cpp.llama_get_memory(ctx)
        n_slots = max_active + (max_active if cache_tokens > 0 else 0)
        self._slots = [Slot(i) for i in range(n_slots)]
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._waiting: deque[SequenceRequest] = deque()
        self._active: list[SequenceRequest] = []
        self._cond = threading.Condition()
        self._closing = False
        # statistics, read by /metrics
        self._steps = 0
        self._step_hist = [0] * (len(STEP_SIZE_BUCKETS) + 1)
        self._step_sum = 0
        self._generated = 0
        self._prompt_read = 0
        self._lookups = 0
        self._hits = 0
        self._reused = 0
        self._recent: deque[tuple[float, int]] = deque()
        self._thread = threading.Thread(target=self._run, name=f"ember-batch-{name}", daemon=True)
        self._thread.start()

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    # -- called from request threads ---------------------------------------------------------

    def retry_after_s(self) -> int:
        return 1 + len(self._waiting) // self._max_active

    def check_capacity(self) -> None:
        if len(self._waiting) + len(self._active) >= self._max_active + self._max_queued:
            raise ServerOverloadedError(
                f"The model is busy: {len(self._active)} requests are generating and "
                f"{len(self._waiting)} are queued. Retry after a moment.",
                retry_after_s=self.retry_after_s(),
            )

    def submit(self, request: SequenceRequest) -> None:
        with self._cond:
            if self._closing:
                raise EngineError("The model is being unloaded.")
            self.check_capacity()
            self._waiting.append(request)
            self._cond.notify()

    @property
    def busy(self) -> bool:
        return bool(self._waiting or self._active)

    def stats(self) -> BatchStats:
        now = time.monotonic()
        recent = [n for t, n in list(self._recent) if now - t <= _RATE_WINDOW_S]
        return BatchStats(
            queued=len(self._waiting),
            active=len(self._active),
            max_active=self._max_active,
            steps=self._steps,
            step_size_buckets=STEP_SIZE_BUCKETS,
            step_size_counts=tuple(self._step_hist),
            step_size_sum=self._step_sum,
            generated_tokens=self._generated,
            prompt_tokens_read=self._prompt_read,
            tokens_per_second=sum(recent) / _RATE_WINDOW_S,
            cache_lookups=self._lookups,
            cache_hits=self._hits,
            cache_reused_tokens=self._reused,
            cache_tokens=sum(len(s.tokens) for s in self._slots if s.owner is None),
        )

    def close(self) -> None:
        """Cancel everything queued or running and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        self._ll.llama_batch_free(self._batch)

    # -- the scheduler thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._waiting and not self._active:
                    self._cond.wait()
                if self._closing:
                    break
            try:
                self._admit()
                if self._active:
                    self._step()
            except Exception as exc:  # a llama.cpp failure: every running request sees it
                logger.exception("batch step failed")
                error = (
                    exc
                    if isinstance(exc, EngineError)
                    else EngineError("llama.cpp failed while generating.")
                )
                for request in list(self._active):
                    self._release(request, error)
        with self._cond:
            waiting, self._waiting = list(self._waiting), deque()
        for request in waiting + list(self._active):
            self._finish(request, "cancelled")

    def _send(self, request: SequenceRequest, item: GenerationChunk | BaseException) -> None:
        try:
            request.emit(item)
        except Exception:  # the receiver is gone (its event loop closed): drop the chunk
            request.cancel.set()

    def _used_cells(self) -> int:
        return sum(len(s.tokens) for s in self._slots)

    def _evict_one(self, keep: Slot | None = None) -> bool:
        """Free the least recently used cached sequence; False when there is none."""
        cached = [s for s in self._slots if s.owner is None and s.tokens and s is not keep]
        if not cached:
            return False
        victim = min(cached, key=lambda s: s.last_used)
        self._ll.llama_memory_seq_rm(self._memory, victim.seq_id, -1, -1)
        victim.tokens = []
        return True

    def _trim_cache(self) -> None:
        while (
            sum(len(s.tokens) for s in self._slots if s.owner is None) > self._cache_tokens
            and self._evict_one()
        ):
            pass

    def _pick_slot(self, tokens: list[int]) -> tuple[Slot, int]:
        """The idle slot to run ``tokens`` in, and how many of its cached tokens it reuses."""
        idle = [s for s in self._slots if s.owner is None]
        best = max(idle, key=lambda s: _common_prefix(s.tokens, tokens))
        shared = min(_common_prefix(best.tokens, tokens), len(tokens) - 1)
        if shared > 0:
            return best, shared
        empty = [s for s in idle if not s.tokens]
        if empty:
            return empty[0], 0
        return min(idle, key=lambda s: s.last_used), 0

    def _admit(self) -> None:
        while len(self._active) < self._max_active:
            with self._cond:
                if not self._waiting:
                    return
                request = self._waiting[0]
            if request.cancel.is_set():
                with self._cond:
                    self._waiting.popleft()
                self._finish(request, "cancelled")
                continue
            slot, shared = self._pick_slot(request.tokens)
            need = len(request.tokens) - shared + len(self._active) + 1

            def free_cells(slot: Slot = slot, shared: int = shared) -> int:
                return self._pool - (self._used_cells() - len(slot.tokens) + shared)

            while free_cells() < need and self._evict_one(keep=slot):
                pass
            if free_cells() < need and self._active:
                return  # wait until running sequences leave room
            with self._cond:
                self._waiting.popleft()
            if len(slot.tokens) > shared:
                self._ll.llama_memory_seq_rm(self._memory, slot.seq_id, shared, -1)
                slot.tokens = slot.tokens[:shared]
            self._lookups += 1
            if shared:
                self._hits += 1
                self._reused += shared
            slot.owner = request
            request.slot = slot
            self._active.append(request)

    def _step(self) -> None:
        for request in list(self._active):
            if request.cancel.is_set():
                self._finish(request, "cancelled")
        if not self._active:
            return
        batch = self._batch
        n = 0
        outputs: list[tuple[int, SequenceRequest]] = []
        decoding = [r for r in self._active if r.pending is not None]
        for request in decoding:
            slot = request.slot
            assert slot is not None and request.pending is not None
            self._put(n, request.pending, len(slot.tokens), slot.seq_id, True)
            outputs.append((n, request))
            n += 1
        budget = min(self._chunk if decoding else self._n_batch, self._n_batch - n)
        reading: list[tuple[SequenceRequest, int]] = []
        for request in self._active:
            slot = request.slot
            assert slot is not None
            if request.pending is not None or budget <= 0:
                continue
            start = len(slot.tokens)
            take = min(budget, len(request.tokens) - start)
            for offset in range(take):
                position = start + offset
                last = position == len(request.tokens) - 1
                self._put(n, request.tokens[position], position, slot.seq_id, last)
                if last:
                    outputs.append((n, request))
                n += 1
            reading.append((request, take))
            budget -= take
        batch.n_tokens = n
        while True:
            status = self._ll.llama_decode(self._ctx, batch)
            if status == 0:
                break
            if status == 1 and self._evict_one():
                continue
            if status == 1:  # the cells are all taken by running sequences
                victim = max(self._active, key=lambda r: len(r.slot.tokens) if r.slot else 0)
                logger.warning("KV cache full: ending the longest sequence")
                self._finish(victim, "length")
                return
            raise EngineError(f"llama.cpp failed while generating (llama_decode {status}).")
        for request in decoding:
            assert request.slot is not None and request.pending is not None
            request.slot.tokens.append(request.pending)
            request.pending = None
        for request, take in reading:
            slot = request.slot
            assert slot is not None
            slot.tokens.extend(request.tokens[len(slot.tokens) : len(slot.tokens) + take])
            self._prompt_read += take
        self._record_step(len(outputs))
        for index, request in outputs:
            try:
                self._sample(request, index)
            except EngineError as exc:
                self._release(request, exc)

    def _put(self, i: int, token: int, position: int, seq_id: int, logits: bool) -> None:
        batch = self._batch
        batch.token[i] = token
        batch.pos[i] = position
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq_id
        batch.logits[i] = logits

    def _record_step(self, size: int) -> None:
        self._steps += 1
        self._step_sum += size
        bucket = next((i for i, b in enumerate(STEP_SIZE_BUCKETS) if size <= b), -1)
        self._step_hist[bucket] += 1
        self._generated += size
        now = time.monotonic()
        self._recent.append((now, size))
        while self._recent and now - self._recent[0][0] > _RATE_WINDOW_S:
            self._recent.popleft()

    def _logits(self, index: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        pointer = self._ll.llama_get_logits_ith(self._ctx, index)
        buffer = (ctypes.c_float * self._n_vocab).from_address(ctypes.addressof(pointer.contents))
        return np.ctypeslib.as_array(buffer)

    def _sample(self, request: SequenceRequest, index: int) -> None:
        logits = self._logits(index)
        if request.mask is not None:
            request.mask.apply(logits)
        token = int(self._ll.llama_sampler_sample(request.sampler.sampler, self._ctx, index))
        logprob = (
            self._tools.logprob(logits, token, request.top_logprobs)
            if request.top_logprobs is not None
            else None
        )
        if self._tools.is_eog(token):
            self._finish(request, "stop")
            return
        if request.mask is not None:
            request.mask.consume(token)
        request.produced += 1
        self._send(
            request,
            GenerationChunk(
                text=request.decoder.decode(self._tools.piece(token)),
                tokens=1,
                logprobs=(logprob,) if logprob else (),
            ),
        )
        if request.mask is not None and request.mask.is_stopped:
            self._finish(request, "stop")
        elif request.produced >= request.max_tokens:
            self._finish(request, "length")
        else:
            request.pending = token

    def _finish(self, request: SequenceRequest, reason: FinishReason) -> None:
        tail = request.decoder.decode(b"", final=True)
        self._release(request, GenerationChunk(text=tail, finish_reason=reason))

    def _release(self, request: SequenceRequest, last: GenerationChunk | BaseException) -> None:
        """Take ``request`` out of the batch, keep its KV as a cached prefix, send ``last``."""
        if request in self._active:
            self._active.remove(request)
        request.sampler.close()
        slot = request.slot
        if slot is not None:
            slot.owner = None
            slot.last_used = time.monotonic()
            request.slot = None
            if self._cache_tokens <= 0:
                self._ll.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
                slot.tokens = []
            self._trim_cache()
        self._send(request, last)
