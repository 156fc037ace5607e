"""The log writer: request-log rows and audit links written by one thread, group commit.

Checked on a real SQLite file and a real PostgreSQL database: order and tamper evidence
survive batching and writers in other threads and stores (processes' stand-ins), a graceful
close loses nothing queued, and readers in the same process always see what was submitted
before.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

from ember.store import AuditEntry, Store


def entry(n: int) -> AuditEntry:
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    return AuditEntry(
        request_id=f"req_{n}",
        endpoint="chat.completions",
        model="m",
        input_sha256=digest,
        output_sha256=digest,
    )


def log(store: Store, n: int) -> None:
    store.log_request(
        endpoint="chat.completions",
        model=f"m{n}",
        prompt_tokens=n,
        completion_tokens=1,
        latency_ms=1.0,
        status="ok",
        tenant="t",
    )


def test_batches_keep_submission_order_and_a_valid_chain(database: str) -> None:
    store = Store(database)
    futures = [store.queue_audit(entry(n)) for n in range(1, 301)]
    for n in range(300):
        log(store, n)
    futures[-1].result(timeout=30)
    records = list(store.iter_audit())
    assert [r.request_id for r in records] == [f"req_{n}" for n in range(1, 301)]
    assert store.verify_audit().ok
    assert store.count_requests() == 300  # flushes first: every row submitted is there
    store.close()


def test_concurrent_writers_in_two_stores_never_fork_the_chain(database: str) -> None:
    stores = [Store(database), Store(database)]

    def work(worker: int) -> None:
        store = stores[worker % 2]
        for n in range(50):
            store.queue_audit(entry(worker * 1000 + n))
            if n % 10 == 0:  # the synchronous path, interleaved with the queued one
                store.append_audit(entry(worker * 1000 + 500 + n))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.writer.flush()
    verification = stores[0].verify_audit()
    assert verification.ok, verification.reason
    assert verification.checked == 6 * 55
    for store in stores:
        store.close()


def test_a_graceful_close_writes_everything_queued(tmp_path: Path) -> None:
    store = Store(tmp_path / "ember.db")
    for n in range(1, 501):
        store.queue_audit(entry(n))
        log(store, n)
    store.close()  # no flush before: close must drain the queue
    with sqlite3.connect(tmp_path / "ember.db") as db:
        assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 500
        assert db.execute("SELECT count(*) FROM request_log").fetchone()[0] == 500
    reopened = Store(tmp_path / "ember.db")
    assert reopened.verify_audit().ok
    reopened.close()


def test_a_bad_record_fails_alone_and_the_writer_goes_on(database: str) -> None:
    store = Store(database)
    good = [store.queue_audit(entry(1))]
    bad = store.writer.submit(request_log={"tenant": "t"})  # no created_at: NOT NULL
    good += [store.queue_audit(entry(n)) for n in range(2, 21)]
    for future in good:
        assert future.result(timeout=30) is None
    try:
        bad.result(timeout=30)
    except Exception as exc:  # the database refused the row
        assert "not null" in str(exc).lower().replace("-", " ")
    else:
        raise AssertionError("a row the table cannot take was reported as written")
    assert store.verify_audit().checked == 20
    assert store.count_requests() == 0
    store.close()
