"""Engines in processes of their own, so a native crash never takes the server down.

:func:`load_isolated` starts ``python -m ember.engines.engine_runner`` for one model and
returns an engine that forwards to it: :class:`ProcessTextEngine` or
:class:`ProcessEmbeddingEngine`, with the same interface as the engine inside. The runner
does the work (llama.cpp's batching scheduler keeps running there, unchanged); this side
only moves requests and chunks across a socket pair.

If the runner dies (SIGSEGV in llama.cpp, an abort, the OOM killer), every request on it
ends with :class:`~ember.errors.EngineCrashedError` (an SSE error frame when a stream had
started), the engine reports ``alive`` False, and the model manager starts a new runner for
the next request. The server, its other models and its jobs go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Literal

from ember.core.chat_template import ChatTemplate
from ember.core.types import GenerationChunk, OutputConstraint, SamplingParams
from ember.engines.base import BatchStats, EmbeddingEngine, Engine, TextEngine
from ember.errors import EmberError, EngineCrashedError, ModelLoadError

if TYPE_CHECKING:
    from ember.models.spec import ModelSpec
    from ember.settings import Settings

logger = logging.getLogger(__name__)

Emit = Callable[[GenerationChunk | BaseException], None]
# The event loop that reads an engine's messages, and its thread (``ModelManager`` passes it).
LoopReader = tuple[asyncio.AbstractEventLoop, int] | None

# How often cancelled streams are looked for (the engine checks between tokens anyway).
_CANCEL_POLL_S = 0.02


class EngineProcess:
    """One runner process and the connection to it."""

    def __init__(self, spec: ModelSpec, settings: Settings, reader: LoopReader = None) -> None:
        self.model = spec.id
        ours, theirs = socket.socketpair()
        self._sock = ours
        self.conn = Connection(os.dup(ours.fileno()))
        fd = theirs.fileno()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ember.engines.engine_runner", str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.pid = self.process.pid
        self.alive = True
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._calls: dict[int, Future[Any]] = {}
        self._streams: dict[int, tuple[Emit, threading.Event]] = {}
        self._stream_started = threading.Event()
        self.info = self._load(spec, settings)
        # Messages are read by the server's event loop when there is one (a thread woken per
        # token would take a core from llama.cpp on a small machine), else by a thread.
        self._loop: asyncio.AbstractEventLoop | None = reader[0] if reader else None
        self._loop_thread: int | None = reader[1] if reader else None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._watch_socket)
        else:
            threading.Thread(target=self._read, name=f"engine-{spec.id}", daemon=True).start()
        threading.Thread(target=self._watch_cancels, name="engine-cancels", daemon=True).start()

    # --- start and stop -------------------------------------------------------------------

    def _load(self, spec: ModelSpec, settings: Settings) -> dict[str, Any]:
        # Resolve the file here (embedded models are joined and verified once, by the server).
        spec = replace(spec, path=spec.resolve_path(settings), locate=None)
        try:
            self.conn.send(("load", spec, settings))
            reply = self.conn.recv()
        except (EOFError, OSError):
            self._shutdown()
            raise ModelLoadError(
                f"The engine process for '{spec.id}' exited while loading the model "
                f"({self._exit_cause()})."
            ) from None
        if reply[0] == "load_error":
            self._shutdown()
            raise reply[1]
        info: dict[str, Any] = reply[1]
        return info

    def _exit_cause(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return "it stopped answering and was killed"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def close(self) -> None:
        """Stop the runner: ask it to close its engine, then make sure it is gone."""
        if self.alive:
            self.alive = False
            with contextlib.suppress(EngineCrashedError):
                self._send(("close",))
        self._shutdown()

    def _shutdown(self) -> None:
        self.alive = False
        self._stop_reading()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()
        self._sock.close()

    # --- the connection ---------------------------------------------------------------------

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            with self._send_lock:
                self.conn.send(message)
        except (OSError, ValueError):
            raise EngineCrashedError(self.model, "its connection is closed") from None

    def _watch_socket(self) -> None:
        if self._loop is None:
            return
        fd = self.conn.fileno()
        self._loop.add_reader(fd, self._ready)
        # uvloop makes a watched descriptor non-blocking; a message is read whole, so the
        # socket stays blocking (the reader runs only when data is waiting).
        os.set_blocking(fd, True)

    def _stop_reading(self) -> None:
        loop, self._loop = getattr(self, "_loop", None), None
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            loop.remove_reader(self.conn.fileno())
        else:
            done = threading.Event()

            def remove() -> None:
                loop.remove_reader(self.conn.fileno())
                done.set()

            loop.call_soon_threadsafe(remove)
            done.wait(5)

    def _ready(self) -> None:
        """The event loop's reader: every message waiting on the socket."""
        try:
            while self._loop is not None and self.conn.poll():
                self._dispatch(self.conn.recv())
        except (EOFError, OSError):
            if self._loop is not None:
                self._loop.remove_reader(self.conn.fileno())
                self._loop = None
            threading.Thread(target=self._crashed, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            self._dispatch(message)
        self._crashed()

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind, rid = message[0], message[1]
        future = self._calls.pop(rid, None) if kind in ("ok", "err", "started") else None
        if future is not None:
            # A call's result, a generation's start, or its refusal (an error before start).
            if kind == "err":
                self._streams.pop(rid, None)
                future.set_exception(message[2])
            else:
                future.set_result(message[2] if kind == "ok" else None)
            return
        stream = self._streams.get(rid)
        if stream is None:
            return  # a cancelled request's last chunks
        item = message[2]
        if kind == "err" or item.finish_reason is not None:
            self._streams.pop(rid, None)
        stream[0](item)

    def _crashed(self) -> None:
        if not self.alive:
            return  # closed on purpose
        self.alive = False
        cause = self._exit_cause()
        logger.error("the engine process for %s died (%s)", self.model, cause)
        error = EngineCrashedError(self.model, cause)
        for future in list(self._calls.values()):
            future.set_exception(error)
        self._calls.clear()
        for emit, _ in list(self._streams.values()):
            emit(error)
        self._streams.clear()

    def _watch_cancels(self) -> None:
        while self.alive:
            if not self._streams:  # nothing to watch: sleep until a stream starts
                self._stream_started.wait(1.0)
                self._stream_started.clear()
                continue
            for rid, (_, cancel) in list(self._streams.items()):
                if cancel.is_set() and self._streams.pop(rid, None) is not None:
                    try:
                        self._send(("cancel", rid))
                    except EngineCrashedError:
                        return
            time.sleep(_CANCEL_POLL_S)

    # --- requests ---------------------------------------------------------------------------

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` on the engine in the runner and wait for its result."""
        if not self.alive:
            raise EngineCrashedError(self.model, "it is being restarted")
        rid = next(self._ids)
        future: Future[Any] = Future()
        self._calls[rid] = future
        self._send(("call", rid, method, (args, kwargs)))
        if not self.alive:  # died between the check and the send
            self._calls.pop(rid, None)
            raise EngineCrashedError(self.model, self._exit_cause())
        if self._loop is not None and threading.get_ident() == self._loop_thread:
            # Called on the loop that reads the socket: read until this call's answer.
            while not future.done():
                try:
                    self._dispatch(self.conn.recv())
                except (EOFError, OSError):
                    self._stop_reading()
                    self._crashed()
        return future.result()

    def start(
        self,
        tokens: Sequence[int],
        params: SamplingParams,
        constraint: OutputConstraint | None,
        cancel: threading.Event,
        emit: Emit,
    ) -> None:
        """Start a generation whose chunks go to ``emit`` (from the reader thread)."""
        if not self.alive:
            raise EngineCrashedError(self.model, "it is being restarted")
        rid = next(self._ids)
        started: Future[None] = Future()
        self._calls[rid] = started  # resolved by "started", or failed by a refusal
        self._streams[rid] = (emit, cancel)
        self._stream_started.set()
        self._send(("generate", rid, list(tokens), params, constraint))
        try:
            started.result()
        except BaseException:
            self._calls.pop(rid, None)
            self._streams.pop(rid, None)
            raise

    @property
    def active(self) -> int:
        return len(self._streams)


class _InProcess:
    """What both proxies answer from their process: liveness, pid, size, closing."""

    process: EngineProcess

    @property
    def alive(self) -> bool:
        return self.process.alive

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def memory_bytes(self) -> int:
        return int(self.process.info["memory_bytes"])

    def close(self) -> None:
        self.process.close()


class ProcessTextEngine(_InProcess, TextEngine):
    """A text engine running in its own process (see the module docstring)."""

    batching = True  # the runner schedules; this side never holds a thread per request

    def __init__(self, process: EngineProcess) -> None:
        super().__init__()
        self.process = process
        info = process.info
        self.capabilities = info["capabilities"]
        self._context_length: int = info["context_length"]
        self._chat_template: ChatTemplate = info["chat_template"]
        self.inner_batching: bool = info["batching"]

    @property
    def busy(self) -> bool:
        return self.process.active > 0

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def chat_template(self) -> ChatTemplate:
        return self._chat_template

    def tokenize(self, text: str) -> list[int]:
        tokens: list[int] = self.process.call("tokenize", text)
        return tokens

    def check_capacity(self) -> None:
        if not self.process.alive:
            return  # the manager restarts it; a request that gets here fails with the crash
        self.process.call("check_capacity")

    def batch_stats(self) -> BatchStats | None:
        if not self.process.alive:
            return None
        stats: BatchStats | None = self.process.call("batch_stats")
        return stats

    def submit(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None,
        cancel: threading.Event,
        emit: Emit,
    ) -> None:
        self.process.start(prompt_tokens, params, constraint, cancel, emit)

    def generate(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationChunk]:
        import queue

        items: queue.SimpleQueue[GenerationChunk | BaseException] = queue.SimpleQueue()
        cancel = cancel or threading.Event()
        self.process.start(prompt_tokens, params, constraint, cancel, items.put)
        try:
            while True:
                item = items.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            cancel.set()


class ProcessEmbeddingEngine(_InProcess, EmbeddingEngine):
    """An embedding engine running in its own process (see the module docstring)."""

    def __init__(self, process: EngineProcess) -> None:
        super().__init__()
        self.process = process
        info = process.info
        self.capabilities = info["capabilities"]
        self._dimensions: int = info["dimensions"]
        self._max_input_tokens: int = info["max_input_tokens"]

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def max_input_tokens(self) -> int:
        return self._max_input_tokens

    def count_tokens(self, text: str) -> int:
        count: int = self.process.call("count_tokens", text)
        return count

    def embed(
        self, texts: Sequence[str], *, input_type: Literal["query", "passage"] = "query"
    ) -> list[list[float]]:
        vectors: list[list[float]] = self.process.call("embed", list(texts), input_type=input_type)
        return vectors


def load_isolated(spec: ModelSpec, settings: Settings, reader: LoopReader = None) -> Engine:
    """Start a runner process for ``spec`` and return the engine that forwards to it
    (``reader``: the event loop that should read its messages, and the loop's thread)."""
    try:
        process = EngineProcess(spec, settings, reader)
    except EmberError:
        raise
    except OSError as exc:
        raise ModelLoadError(
            f"The engine process for '{spec.id}' could not be started ({type(exc).__name__})."
        ) from exc
    if process.info["kind"] == "text":
        return ProcessTextEngine(process)
    return ProcessEmbeddingEngine(process)
