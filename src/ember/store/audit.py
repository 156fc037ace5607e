"""The tamper-evident audit log: a hash chain in the ``audit_log`` table.

Each request appends one record (time, tenant, request id, endpoint, model, route, status,
guard verdicts, SHA-256 of the input and output, and the raw texts only when configured).
Records are numbered by ``seq`` from 1 without gaps, and each carries ``prev_hash`` (the
previous record's ``hash``; 64 zeros for the first) and its own ``hash``::

    hash = sha256(canonical_json(record without "hash"))
    canonical_json = json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                ensure_ascii=False, allow_nan=False).encode("utf-8")

``verdicts`` is part of the record as its stored JSON text, so an exported record (``ember
audit export``) can be re-hashed by anyone with the recipe above and nothing of Ember's.

:func:`verify` walks the chain in ``seq`` order and names the first record that breaks it:
a gap in ``seq`` (records deleted), a ``prev_hash`` that is not the previous record's hash
(records inserted or reordered), or a hash that does not match the record (record edited).
What a chain cannot show by itself is truncation of its newest records; keep the head hash
that ``ember audit verify`` prints somewhere else to detect that.

Appends take the database's write lock before reading the last hash (SQLite ``BEGIN
IMMEDIATE``), so concurrent writers, threads or processes, cannot fork the chain. The server
appends through ``ember.store.writer`` (one thread, many requests' records per transaction,
in the order the requests finished); ``append_many`` chains such a batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from ember.store.tables import AuditLogRow

GENESIS_HASH = "0" * 64
_PAGE = 500


def canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """What the caller knows about a request; :func:`append` chains it."""

    request_id: str
    endpoint: str
    model: str
    input_sha256: str
    output_sha256: str
    status: str = "ok"
    tenant: str | None = None
    route: str | None = None
    verdicts: dict[str, Any] = field(default_factory=dict)
    input_text: str | None = None
    output_text: str | None = None
    created_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class AuditRecord:
    """One stored link of the chain, exactly as hashed (``verdicts`` is JSON text)."""

    seq: int
    created_at: float
    request_id: str
    tenant: str | None
    endpoint: str
    model: str
    route: str | None
    status: str
    verdicts: str
    input_sha256: str
    output_sha256: str
    input_text: str | None
    output_text: str | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # every field is a plain value: no deep copy needed

    def computed_hash(self) -> str:
        fields = self.to_dict()
        del fields["hash"]
        return sha256_text(canonical_json(fields))


@dataclass(frozen=True)
class AuditVerification:
    """The outcome of :func:`verify`: ``ok``, how many records were read, the first bad one."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_hash: str = GENESIS_HASH


def append(session: Session, entry: AuditEntry) -> AuditRecord:
    """Chain ``entry`` after the newest record, holding the write lock from read to insert."""
    return append_many(session, [entry])[0]


def append_many(session: Session, entries: list[AuditEntry]) -> list[AuditRecord]:
    """Chain ``entries``, in order, after the newest record, in the session's transaction.

    The write lock is taken before the newest record is read (it must be the transaction's
    first statement), so no other writer can chain onto the same record.
    """
    if session.get_bind().dialect.name == "sqlite":
        # The first statement of the transaction: take the write lock before reading.
        session.execute(text("BEGIN IMMEDIATE"))
    else:
        session.execute(text("LOCK TABLE audit_log IN EXCLUSIVE MODE"))
    last = session.execute(
        select(AuditLogRow.seq, AuditLogRow.hash).order_by(AuditLogRow.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    records = []
    for entry in entries:
        seq += 1
        record = chain(entry, seq, prev_hash)
        prev_hash = record.hash
        records.append(record)
    if records:
        # Core's executemany: one prepared statement, no ORM bookkeeping per row.
        rows = [record.to_dict() for record in records]
        session.connection().execute(insert(AuditLogRow), rows)
    return records


def chain(entry: AuditEntry, seq: int, prev_hash: str) -> AuditRecord:
    """The record ``entry`` becomes as link ``seq`` after a record whose hash is ``prev_hash``."""
    unhashed = AuditRecord(
        seq=seq,
        created_at=entry.created_at,
        request_id=entry.request_id,
        tenant=entry.tenant,
        endpoint=entry.endpoint,
        model=entry.model,
        route=entry.route,
        status=entry.status,
        verdicts=canonical_json(entry.verdicts),
        input_sha256=entry.input_sha256,
        output_sha256=entry.output_sha256,
        input_text=entry.input_text,
        output_text=entry.output_text,
        prev_hash=prev_hash,
        hash="",
    )
    return replace(unhashed, hash=unhashed.computed_hash())


def iter_records(
    open_session: Callable[[], AbstractContextManager[Session]],
    *,
    after_seq: int | None = None,
    limit: int | None = None,
) -> Iterator[AuditRecord]:
    """Records in ``seq`` order, read a page at a time so that a long log is never all loaded."""
    cursor = after_seq
    remaining = limit
    while remaining is None or remaining > 0:
        size = _PAGE if remaining is None else min(_PAGE, remaining)
        query = select(AuditLogRow).order_by(AuditLogRow.seq).limit(size)
        if cursor is not None:
            query = query.where(AuditLogRow.seq > cursor)
        with open_session() as session:
            page = [_record(row) for row in session.scalars(query)]
        yield from page
        if len(page) < size:
            return
        cursor = page[-1].seq
        if remaining is not None:
            remaining -= len(page)


def tail(session: Session, count: int) -> list[AuditRecord]:
    """The newest ``count`` records, oldest first."""
    rows = session.scalars(select(AuditLogRow).order_by(AuditLogRow.seq.desc()).limit(count))
    return [_record(row) for row in reversed(rows.all())]


def verify(records: Iterable[AuditRecord]) -> AuditVerification:
    """Walk the chain and stop at the first record that breaks it."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for record in records:
        reason = None
        if record.seq != expected_seq:
            reason = (
                f"records {expected_seq}..{record.seq - 1} are missing (deleted)"
                if record.seq > expected_seq
                else f"expected seq {expected_seq} here"
            )
        elif record.prev_hash != prev_hash:
            reason = (
                f"its prev_hash is not the hash of record {record.seq - 1} "
                "(a record was inserted, deleted or reordered)"
                if record.seq > 1
                else "its prev_hash is not the genesis hash (a record was inserted)"
            )
        elif record.computed_hash() != record.hash:
            reason = "its contents do not match its hash (the record was edited)"
        if reason is not None:
            return AuditVerification(False, checked, record.seq, reason, prev_hash)
        checked += 1
        expected_seq, prev_hash = record.seq + 1, record.hash
    return AuditVerification(True, checked, head_hash=prev_hash)


def _record(row: AuditLogRow) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        created_at=row.created_at,
        request_id=row.request_id,
        tenant=row.tenant,
        endpoint=row.endpoint,
        model=row.model,
        route=row.route,
        status=row.status,
        verdicts=row.verdicts,
        input_sha256=row.input_sha256,
        output_sha256=row.output_sha256,
        input_text=row.input_text,
        output_text=row.output_text,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
