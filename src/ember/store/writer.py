"""Group commit for the per-request records: the request log and the audit chain.

Every inference request leaves two rows behind (``request_log`` and one link of
``audit_log``). Writing them on the event loop costs a transaction each per request; here
one thread owns those writes instead. A request hands its rows over (:meth:`LogWriter.submit`
never blocks) and the thread writes whatever has queued up since its last transaction in one
transaction: under load, many requests' rows per commit.

Order and tamper evidence are those of ``ember.store.audit``: the thread chains audit
entries in the order they were submitted, inside a transaction that took the write lock
before reading the newest link, so another process appending meanwhile cannot fork the chain.

Durability is the caller's choice (the ``log_synchronous_commit`` setting, after
PostgreSQL's ``synchronous_commit``): a request may await its rows' commit (the event loop
serves others meanwhile), or answer first and leave them queued, in which case a crash (not
a graceful shutdown: :meth:`close` writes everything queued) can lose the rows of the
requests answered in the last few milliseconds. Readers of these tables in this process
call :meth:`flush` first, so they always see every row submitted before.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ember.store import audit
from ember.store.audit import AuditEntry
from ember.store.tables import RequestLogRow
from ember.store.usage import add_to_daily

logger = logging.getLogger(__name__)

MAX_BATCH = 1024
LOCKED_GIVE_UP_S = 30.0  # at shutdown: how long a lock held by another process is waited out


@dataclass
class Pending:
    """One request's rows: its request-log row and/or its audit entry."""

    request_log: dict[str, Any] | None = None
    audit: AuditEntry | None = None
    done: Future[None] = field(default_factory=Future)


class LogWriter:
    """The one thread that writes request-log rows and audit links, a batch per transaction."""

    def __init__(self, open_session: Callable[[], Any]) -> None:
        self._open_session = open_session
        self._queue: queue.Queue[Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def submit(
        self, *, request_log: dict[str, Any] | None = None, audit: AuditEntry | None = None
    ) -> Future[None]:
        """Queue one request's rows; the future is done once they are committed."""
        item = Pending(request_log=request_log, audit=audit)
        if self._closed:  # after shutdown (a straggler): write it here and now
            self._write([item])
            return item.done
        self._ensure_started()
        self._queue.put(item)
        return item.done

    def flush(self) -> None:
        """Wait until every row submitted so far is committed (or failed)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Write everything queued, then stop the thread (a graceful shutdown loses nothing)."""
        self._closed = True
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        leftovers = []  # submitted while the thread was stopping
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item)
        if leftovers:
            self._write(leftovers)

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="ember-log-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [item for item in items if item is not None]
            stop = len(batch) < len(items)  # close() queued None
            try:
                if batch:
                    self._write(batch)
            finally:
                for _ in items:
                    self._queue.task_done()

    def _write(self, batch: list[Pending]) -> None:
        try:
            if any(item.request_log or item.audit for item in batch):
                self._write_while_locked(batch)
        except Exception as exc:  # a bookkeeping failure must not kill the writer
            if len(batch) > 1:  # one bad record must not take its batch with it
                for item in batch:
                    self._write([item])
                return
            logger.exception("could not write a request record")
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        for item in batch:
            if not item.done.done():
                item.done.set_result(None)

    def _write_while_locked(self, batch: list[Pending]) -> None:
        """Write the batch, waiting out another process's lock on the database (past the
        connection's busy timeout) instead of dropping the records: a request's audit link
        and log row are kept until they are written. Gives up only when the server is
        stopping and the lock has lasted :data:`LOCKED_GIVE_UP_S`."""
        waited, delay = 0.0, 0.05
        while True:
            try:
                with self._open_session() as session:
                    write_batch(session, batch)
                return
            except OperationalError as exc:
                if not database_locked(exc) or (self._closed and waited >= LOCKED_GIVE_UP_S):
                    raise
                if waited == 0.0 or int(waited + delay) // 10 > int(waited) // 10:
                    logger.warning(
                        "the database is locked by another process; %d request records "
                        "wait (%.0f s so far)",
                        len(batch),
                        waited,
                    )
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 1.0)


def database_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is the database refusing a write because another process holds its
    lock past the busy timeout (a transient state, not a bug)."""
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection timeout",
    "the database system is shutting down",
    "the database system is starting up",
    "no such file or directory",  # PostgreSQL's socket directory gone with its server
)


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database server being away (down, restarting, unreachable):
    transient, answered 503 until the pool reconnects by itself."""
    if not isinstance(exc, OperationalError):
        return False
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(sign in text for sign in _UNREACHABLE)


def write_batch(session: Session, batch: list[Pending]) -> None:
    """Chain the batch's audit entries (in order), insert its request-log rows and add
    them to ``usage_daily``."""
    entries = [item.audit for item in batch if item.audit is not None]
    if entries:
        audit.append_many(session, entries)  # first statement: takes the write lock
    rows = [item.request_log for item in batch if item.request_log is not None]
    if rows:
        session.connection().execute(insert(RequestLogRow), rows)
        add_to_daily(session, rows)  # the usage report's sums, in the same transaction
