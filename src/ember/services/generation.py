"""Run a synchronous engine generation from async code, with stop strings and cancellation.

A batching engine (llama.cpp) takes the request with ``submit`` and streams chunks back from
its scheduler thread; any other engine runs in a worker thread holding the engine's lock (one
generation per model at a time). Either way chunks cross to the event loop through a queue.
When the consumer stops early (a stop string matched, the client disconnected, the task was
cancelled) the ``cancel`` event is set and the engine stops at its next token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from ember.core.types import GenerationChunk, OutputConstraint, SamplingParams
from ember.engines.base import TextEngine

_DONE = object()


class StopStringFilter:
    """Cuts generated text at the first stop string, holding back possible partial matches."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Text safe to emit now; sets ``stopped`` when a stop string appeared."""
        if not self.stops:
            return text
        self._pending += text
        cut = min((i for s in self.stops if (i := self._pending.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self._pending = self._pending[:cut], ""
            return out
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:size]):
                    hold = max(hold, size)
                    break
        out = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(out) :]
        return out

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return out


async def generate_async(
    engine: TextEngine,
    prompt_tokens: Sequence[int],
    params: SamplingParams,
    *,
    constraint: OutputConstraint | None = None,
) -> AsyncIterator[GenerationChunk]:
    """Yield the engine's chunks with stop strings applied; the last has ``finish_reason``."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancel = threading.Event()

    def produce() -> None:
        try:
            with engine.lock:
                for chunk in engine.generate(
                    prompt_tokens, params, constraint=constraint, cancel=cancel
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
                    if cancel.is_set():
                        break
        except BaseException as exc:
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    def emit(item: GenerationChunk | BaseException) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    worker: asyncio.Future[None] | None = None
    if engine.batching:
        try:
            await asyncio.to_thread(
                engine.submit,
                prompt_tokens,
                params,
                constraint=constraint,
                cancel=cancel,
                emit=emit,
            )
        except BaseException:
            cancel.set()  # cancelled while submitting: the request must not run on
            raise
    else:
        worker = loop.run_in_executor(None, produce)
    stops = StopStringFilter(params.stop)
    pending: object | None = None
    try:
        while True:
            item = pending if pending is not None else await queue.get()
            pending = None
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, GenerationChunk)
            # When the consumer falls behind (a slow client, a busy machine), send what has
            # piled up as one chunk instead of one write per token.
            while item.finish_reason is None and not queue.empty():
                following = queue.get_nowait()
                if not isinstance(following, GenerationChunk):
                    pending = following  # an error or the end: handled next turn
                    break
                item = GenerationChunk(
                    text=item.text + following.text,
                    tokens=item.tokens + following.tokens,
                    logprobs=item.logprobs + following.logprobs,
                    finish_reason=following.finish_reason,
                )
            text = stops.feed(item.text)
            if stops.stopped:
                cancel.set()
                yield replace(item, text=text, finish_reason="stop")
                return
            if item.finish_reason is not None:
                text += stops.flush()
            yield replace(item, text=text)
            if item.finish_reason is not None:
                return
    finally:
        cancel.set()
        # The worker ends within one token once cancelled; wait so the engine lock is free
        # for the next request and no chunk outlives its request. (A batching engine's
        # scheduler drops the request at its next step.)
        if worker is not None:
            await asyncio.shield(worker)
