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
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
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


class EngineStream:
    """One generation on a text engine: :meth:`start` hands it to the engine, :meth:`chunks`
    yields what it generates with stop strings applied.

    A batching engine takes the request in ``start`` with ``submit``, and refuses it there
    (a full queue: ``ServerOverloadedError``), so a caller that starts it before a stream's
    first byte answers the refusal as an HTTP error (``TextGenerationService.admit``); any
    other engine runs it in a worker thread holding the engine's lock. Closing ``chunks``
    (or dropping a stream never read) cancels the generation.
    """

    def __init__(
        self,
        engine: TextEngine,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None = None,
    ) -> None:
        self.engine = engine
        self.prompt_tokens = prompt_tokens
        self.params = params
        self.constraint = constraint
        self.cancel = threading.Event()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._worker: asyncio.Future[None] | None = None
        self.started = False
        # A stream started but never read must not run on for nobody.
        weakref.finalize(self, self.cancel.set)

    async def start(self) -> None:
        """Hand the generation to the engine; a refusal raises here."""
        loop = asyncio.get_running_loop()
        queue, cancel, engine = self._queue, self.cancel, self.engine
        prompt_tokens, params, constraint = self.prompt_tokens, self.params, self.constraint

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

        self.started = True
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
                cancel.set()  # refused, or cancelled while submitting: it must not run on
                raise
        else:
            self._worker = loop.run_in_executor(None, produce)

    async def chunks(self) -> AsyncGenerator[GenerationChunk, None]:
        """Yield the engine's chunks with stop strings applied; the last has
        ``finish_reason``. Call :meth:`start` first."""
        assert self.started, "start the stream first"
        queue, cancel, params = self._queue, self.cancel, self.params
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
                # When the consumer falls behind (a slow client, a busy machine), send what
                # has piled up as one chunk instead of one write per token.
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
            # The worker ends within one token once cancelled; wait so the engine lock is
            # free for the next request and no chunk outlives its request. (A batching
            # engine's scheduler drops the request at its next step.)
            if self._worker is not None:
                await asyncio.shield(self._worker)


async def generate_async(
    engine: TextEngine,
    prompt_tokens: Sequence[int],
    params: SamplingParams,
    *,
    constraint: OutputConstraint | None = None,
) -> AsyncIterator[GenerationChunk]:
    """Start a generation and yield its chunks (see :class:`EngineStream`)."""
    stream = EngineStream(engine, prompt_tokens, params, constraint=constraint)
    await stream.start()
    async with aclosing(stream.chunks()) as chunks:
        async for chunk in chunks:
            yield chunk
