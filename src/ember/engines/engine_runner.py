"""The process one model's engine runs in (``python -m ember.engines.engine_runner FD``).

The server starts one runner per loaded model (``ember.engines.engine_process``), so a crash
inside native code (llama.cpp, torch, a ctypes library) ends this process and the requests
on it, never the server. The runner loads the engine with the same factory the server would
use, then serves requests on the connection it was given: calls (``tokenize``, ``embed``,
...) and generations, whose chunks it streams back as the engine produces them. It exits
when the connection closes or the server process dies.

Messages are pickled tuples. From the server::

    ("load", spec, settings)
    ("call", rid, method, args)          -> ("ok", rid, value) | ("err", rid, error)
    ("generate", rid, tokens, params, constraint)
        -> ("started", rid) | ("err", rid, error), then ("chunk", rid, chunk) ... the last
           chunk carries finish_reason, or ("err", rid, error) ends the stream
    ("cancel", rid)
    ("close",)

Errors cross as ``EmberError`` (which pickles); a foreign exception is logged here and
crosses as an ``EngineError`` naming its class, never its text.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from ember.core.types import GenerationChunk
from ember.engines.base import EmbeddingEngine, Engine, TextEngine, engine_factory
from ember.errors import EmberError, EngineError, ModelLoadError

logger = logging.getLogger("ember.engines.runner")

# What the server may call by name, per engine kind.
TEXT_CALLS = frozenset({"tokenize", "check_capacity", "batch_stats", "memory_bytes"})
EMBEDDING_CALLS = frozenset({"count_tokens", "embed", "memory_bytes"})


def describe(engine: Engine) -> dict[str, Any]:
    """The engine's fixed facts, sent once so the server answers them without a round trip."""
    info: dict[str, Any] = {
        "capabilities": engine.capabilities,
        "memory_bytes": engine.memory_bytes,
        "pid": os.getpid(),
    }
    if isinstance(engine, TextEngine):
        info.update(
            kind="text",
            batching=engine.batching,
            context_length=engine.context_length,
            chat_template=engine.chat_template,
        )
    elif isinstance(engine, EmbeddingEngine):
        info.update(
            kind="embedding",
            dimensions=engine.dimensions,
            max_input_tokens=engine.max_input_tokens,
        )
    else:  # pragma: no cover - every registered engine is one of the two
        raise ModelLoadError(f"{type(engine).__name__} is neither a text nor an embedding engine.")
    return info


def portable(exc: BaseException) -> EmberError:
    """An error the server can show: ours as they are, anything else by class name only."""
    if isinstance(exc, EmberError):
        return exc
    logger.error("engine error", exc_info=exc)
    return EngineError(f"The engine failed ({type(exc).__name__}).")


class Runner:
    """Serves one loaded engine over one connection."""

    def __init__(self, conn: Connection, engine: Engine) -> None:
        self.conn = conn
        self.engine = engine
        self._send_lock = threading.Lock()
        self._cancels: dict[int, threading.Event] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="engine-call")

    def send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self.conn.send(message)

    def serve(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return  # the server closed the connection or is gone
            kind = message[0]
            if kind == "call":
                self._pool.submit(self._call, *message[1:])
            elif kind == "generate":
                self._generate(*message[1:])
            elif kind == "cancel":
                event = self._cancels.pop(message[1], None)
                if event is not None:
                    event.set()
            elif kind == "close":
                return

    def _call(self, rid: int, method: str, args: tuple[Any, ...]) -> None:
        allowed = TEXT_CALLS if isinstance(self.engine, TextEngine) else EMBEDDING_CALLS
        try:
            if method not in allowed:
                raise EngineError(f"The engine process does not serve '{method}'.")
            attribute = getattr(self.engine, method)
            value = attribute(*args[0], **args[1]) if callable(attribute) else attribute
        except BaseException as exc:
            self.send(("err", rid, portable(exc)))
        else:
            self.send(("ok", rid, value))

    def _generate(self, rid: int, tokens: list[int], params: Any, constraint: Any) -> None:
        engine = self.engine
        assert isinstance(engine, TextEngine)
        cancel = threading.Event()
        self._cancels[rid] = cancel

        def emit(item: GenerationChunk | BaseException) -> None:
            if isinstance(item, BaseException):
                self._cancels.pop(rid, None)
                self.send(("err", rid, portable(item)))
                return
            if item.finish_reason is not None:
                self._cancels.pop(rid, None)
            self.send(("chunk", rid, item))

        if engine.batching:
            try:
                engine.submit(tokens, params, constraint=constraint, cancel=cancel, emit=emit)
            except BaseException as exc:
                self._cancels.pop(rid, None)
                self.send(("err", rid, portable(exc)))
                return
            self.send(("started", rid))
            return
        self.send(("started", rid))
        self._pool.submit(self._generate_serially, engine, tokens, params, constraint, cancel, emit)

    @staticmethod
    def _generate_serially(
        engine: TextEngine,
        tokens: list[int],
        params: Any,
        constraint: Any,
        cancel: threading.Event,
        emit: Callable[[GenerationChunk | BaseException], None],
    ) -> None:
        """A non-batching engine: one generation at a time, in arrival order of the lock."""
        try:
            with engine.lock:
                if cancel.is_set():
                    emit(GenerationChunk(finish_reason="cancelled"))
                    return
                for chunk in engine.generate(tokens, params, constraint=constraint, cancel=cancel):
                    emit(chunk)
                    if chunk.finish_reason is not None:
                        return
                    if cancel.is_set():
                        emit(GenerationChunk(finish_reason="cancelled"))
                        return
        except BaseException as exc:
            emit(exc)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the server dies (no orphaned engines)."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main(argv: list[str]) -> None:
    _die_with_parent()
    logging.basicConfig(
        level=os.environ.get("EMBER_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s engine[%(process)d] %(name)s: %(message)s",
    )
    conn = Connection(int(argv[0]))
    _, spec, settings = conn.recv()
    try:
        engine = engine_factory(spec.engine)(spec, settings)
        info = describe(engine)
    except BaseException as exc:
        error = (
            exc
            if isinstance(exc, EmberError)
            else ModelLoadError(
                f"The model '{spec.id}' could not be loaded by the {spec.engine} engine "
                f"({type(exc).__name__})."
            )
        )
        if not isinstance(exc, EmberError):
            logger.error("load failed", exc_info=exc)
        conn.send(("load_error", error))
        return
    conn.send(("ready", info))
    try:
        Runner(conn, engine).serve()
    finally:
        engine.close()
    # Skip interpreter teardown: native libraries' destructors have nothing left to save.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
