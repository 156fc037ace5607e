"""Continuous batching for the llama.cpp engine: one scheduler thread per loaded model.

Every step advances every active sequence by one token in a single ``llama_decode`` over a
multi-sequence batch (decoding on a CPU is bound by memory bandwidth: reading the weights once
per step costs the same for one sequence or eight). Requests wait in a bounded queue and join
between steps; their prompts are read in chunks of ``prefill_chunk_tokens`` while others decode,
so a long prompt does not stall running streams. A finished or cancelled sequence leaves at once.

Each sequence has its own llama.cpp sampler chain (its own seed) and, for constrained output,
its own llguidance mask; a sequence's logits depend only on its own tokens (the attention mask
keeps sequences apart), so no request can influence another.

A finished sequence's KV state is copied out to host memory (``llama_state_seq_get_data``)
into a prefix cache (least recently used first out, bounded by ``prefix_cache_mb``) and its
cells are freed; a new request whose tokens start like a cached entry gets that state copied
back into its sequence and reads only the rest. Keeping cached prefixes out of the KV cells
matters: with a unified cache every sequence's attention spans every occupied cell.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

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
MIN_REUSED_TOKENS = 16  # a shorter shared prefix is cheaper to re-read than to restore


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
    # Plain greedy (no penalties): the highest logit, read straight from the logits buffer
    # instead of through the sampler chain, which copies the whole vocabulary per token.
    greedy: bool = False
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


class PrefixCache:
    """KV snapshots of finished sequences in host memory, by their tokens; LRU by bytes."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple[int, ...], ctypes.Array[ctypes.c_uint8]] = OrderedDict()
        self._bytes = 0

    @property
    def tokens(self) -> int:
        return sum(len(key) for key in self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def best(self, tokens: list[int]) -> tuple[tuple[int, ...], int] | None:
        """The entry sharing the longest prefix with ``tokens``, and that length."""
        found = max(
            ((key, _common_prefix(list(key), tokens)) for key in self._entries),
            key=lambda pair: pair[1],
            default=None,
        )
        return found if found and found[1] > 0 else None

    def get(self, key: tuple[int, ...]) -> ctypes.Array[ctypes.c_uint8]:
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: tuple[int, ...], state: ctypes.Array[ctypes.c_uint8]) -> None:
        if len(state) > self.budget_bytes:
            return
        # an entry this one extends (the previous turn of the conversation) is redundant
        for old in [k for k in self._entries if len(k) <= len(key) and key[: len(k)] == k]:
            self._bytes -= len(self._entries.pop(old))
        self._entries[key] = state
        self._bytes += len(state)
        while self._bytes > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted)


class TokenTools(Protocol):
    """What the scheduler needs from the engine: token text, logprobs, end of generation."""

    def piece(self, token: int) -> bytes: ...

    def logprob(self, logits: np.ndarray[Any, Any], token: int, top: int) -> TokenLogprob: ...

    def is_eog(self, token: int) -> bool: ...


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
        cache_bytes: int,
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
        self._cache = PrefixCache(cache_bytes)
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._slots = [Slot(i) for i in range(max_active)]
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

    @property
    def cache_bytes(self) -> int:
        return self._cache.bytes

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
            cache_tokens=self._cache.tokens,
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
            if self._active and self._pool - self._used_cells() < (
                len(request.tokens) + len(self._active) + 1
            ):
                return  # wait until running sequences leave room
            with self._cond:
                self._waiting.popleft()
            slot = next(s for s in self._slots if s.owner is None)
            self._lookups += 1
            shared = self._restore(slot, request.tokens)
            if shared:
                self._hits += 1
                self._reused += shared
            slot.owner = request
            request.slot = slot
            self._active.append(request)

    def _restore(self, slot: Slot, tokens: list[int]) -> int:
        """Copy the best cached prefix of ``tokens`` into ``slot``; how many tokens it holds."""
        found = self._cache.best(tokens)
        if found is None:
            return 0
        key, shared = found
        shared = min(shared, len(tokens) - 1)  # re-read at least one token to get logits
        if shared < MIN_REUSED_TOKENS or self._used_cells() + len(key) > self._pool:
            return 0
        state = self._cache.get(key)
        if not self._ll.llama_state_seq_set_data(self._ctx, state, len(state), slot.seq_id):
            self._ll.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
            return 0
        self._ll.llama_memory_seq_rm(self._memory, slot.seq_id, shared, -1)
        slot.tokens = tokens[:shared]
        return shared

    def _save(self, slot: Slot) -> None:
        """Copy ``slot``'s KV state into the prefix cache."""
        if self._cache.budget_bytes <= 0 or len(slot.tokens) < MIN_REUSED_TOKENS:
            return
        size = self._ll.llama_state_seq_get_size(self._ctx, slot.seq_id)
        if not size or size > self._cache.budget_bytes:
            return
        state = (ctypes.c_uint8 * size)()
        if self._ll.llama_state_seq_get_data(self._ctx, state, size, slot.seq_id) == size:
            self._cache.put(tuple(slot.tokens), state)

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
        status = self._ll.llama_decode(self._ctx, batch)
        if status == 1:  # no free cells: the running sequences fill the context
            victim = max(self._active, key=lambda r: len(r.slot.tokens) if r.slot else 0)
            logger.warning("KV cache full: ending the longest sequence")
            self._finish(victim, "length")
            return
        if status != 0:
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
        # The logits are read in Python only when a grammar, logprobs or greedy need them.
        logits = (
            self._logits(index)
            if request.greedy or request.mask is not None or request.top_logprobs is not None
            else None
        )
        if request.mask is not None:
            assert logits is not None
            request.mask.apply(logits)
        if request.greedy:
            assert logits is not None
            token = int(np.argmax(logits))  # the first highest, as llama.cpp's greedy sampler
        else:
            token = int(self._ll.llama_sampler_sample(request.sampler.sampler, self._ctx, index))
        logprob = (
            self._tools.logprob(logits, token, request.top_logprobs)
            if logits is not None and request.top_logprobs is not None
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
            self._save(slot)
            self._ll.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
            slot.tokens = []
            slot.owner = None
            request.slot = None
        self._send(request, last)
