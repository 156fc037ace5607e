"""The fine-tuning tables: jobs, their events and their checkpoints.

A job row keeps the OpenAI ``fine_tuning.job`` object as JSON (``job``) next to what only
Ember needs (``internal``: the base model's files, LoRA settings, the work directory, the
perplexities). ``status``, ``requested`` (a pause or cancel the worker should honour at its
next step) and ``worker_pid`` are columns because the server and the worker process both
read and write them. ``seq`` orders listings (``created_at`` has one-second ties).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ember.store.tables import FineTuningCheckpointRow, FineTuningEventRow, FineTuningJobRow


@dataclass(frozen=True)
class JobRecord:
    id: str
    created_at: int
    status: str
    requested: str | None
    worker_pid: int | None
    fine_tuned_model: str | None
    job: dict[str, Any]
    internal: dict[str, Any]
    owner: str | None = None  # the tenant that created it; None: the operator


@dataclass(frozen=True)
class EventRecord:
    seq: int
    job_id: str
    created_at: int
    level: str
    type: str
    message: str
    data: dict[str, Any] | None

    def to_openai(self) -> dict[str, Any]:
        return {
            "object": "fine_tuning.job.event",
            "id": f"ftevent-{self.seq}",
            "created_at": self.created_at,
            "level": self.level,
            "message": self.message,
            "type": self.type,
            "data": self.data,
        }


@dataclass(frozen=True)
class CheckpointRecord:
    seq: int
    job_id: str
    created_at: int
    step: int
    path: str
    metrics: dict[str, Any]


def _job(row: FineTuningJobRow) -> JobRecord:
    return JobRecord(
        id=row.id,
        created_at=row.created_at,
        status=row.status,
        requested=row.requested,
        worker_pid=row.worker_pid,
        fine_tuned_model=row.fine_tuned_model,
        job=json.loads(row.job),
        internal=json.loads(row.internal),
        owner=row.owner,
    )


def _row(session: Session, job_id: str) -> FineTuningJobRow | None:
    return session.scalars(select(FineTuningJobRow).where(FineTuningJobRow.id == job_id)).first()


def add_job(session: Session, record: JobRecord) -> None:
    session.add(
        FineTuningJobRow(
            id=record.id,
            created_at=record.created_at,
            status=record.status,
            requested=record.requested,
            worker_pid=record.worker_pid,
            fine_tuned_model=record.fine_tuned_model,
            job=json.dumps(record.job),
            internal=json.dumps(record.internal),
            owner=record.owner,
        )
    )


def get_job(session: Session, job_id: str) -> JobRecord | None:
    row = _row(session, job_id)
    return _job(row) if row else None


_UNSET: Any = object()


def update_job(
    session: Session,
    job_id: str,
    *,
    status: str | None = None,
    requested: str | None = _UNSET,
    worker_pid: int | None = _UNSET,
    fine_tuned_model: str | None = None,
    job: dict[str, Any] | None = None,
    internal: dict[str, Any] | None = None,
    only_if_status: Sequence[str] | None = None,
) -> JobRecord | None:
    """Apply the changes (``job``/``internal`` are merged key by key); None when the job is
    missing or, with ``only_if_status``, in another status."""
    row = _row(session, job_id)
    if row is None or (only_if_status is not None and row.status not in only_if_status):
        return None
    if status is not None:
        row.status = status
    if requested is not _UNSET:
        row.requested = requested
    if worker_pid is not _UNSET:
        row.worker_pid = worker_pid
    if fine_tuned_model is not None:
        row.fine_tuned_model = fine_tuned_model
    merged = json.loads(row.job)
    merged.update(job or {})
    if status is not None:
        merged["status"] = status
    row.job = json.dumps(merged)
    if internal:
        row.internal = json.dumps({**json.loads(row.internal), **internal})
    return _job(row)


def page_jobs(
    session: Session, *, after: str | None, limit: int, owner: str | None = None
) -> tuple[list[JobRecord], bool]:
    """Newest first, ``limit`` of them after the job ``after``; and whether more follow.
    ``owner``: that tenant's jobs only (None: every job)."""
    query = select(FineTuningJobRow).order_by(FineTuningJobRow.seq.desc())
    if owner is not None:
        query = query.where(FineTuningJobRow.owner == owner)
    if after is not None:
        anchor = _row(session, after)
        if anchor is not None:
            query = query.where(FineTuningJobRow.seq < anchor.seq)
    rows = session.scalars(query.limit(limit + 1)).all()
    return [_job(r) for r in rows[:limit]], len(rows) > limit


def jobs_in(session: Session, statuses: Sequence[str]) -> list[JobRecord]:
    """Jobs in any of ``statuses``, oldest first."""
    query = select(FineTuningJobRow).where(FineTuningJobRow.status.in_(list(statuses)))
    return [_job(r) for r in session.scalars(query.order_by(FineTuningJobRow.seq)).all()]


def fine_tuned_models(session: Session) -> list[JobRecord]:
    query = select(FineTuningJobRow).where(
        FineTuningJobRow.status == "succeeded", FineTuningJobRow.fine_tuned_model.is_not(None)
    )
    return [_job(r) for r in session.scalars(query.order_by(FineTuningJobRow.seq)).all()]


def add_event(
    session: Session,
    job_id: str,
    created_at: int,
    message: str,
    *,
    level: str = "info",
    type: str = "message",
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        FineTuningEventRow(
            job_id=job_id,
            created_at=created_at,
            level=level,
            type=type,
            message=message,
            data=json.dumps(data) if data is not None else None,
        )
    )


def page_events(
    session: Session, job_id: str, *, after: str | None, limit: int
) -> tuple[list[EventRecord], bool]:
    """Newest first, as OpenAI lists them; ``after`` is an event id (``ftevent-N``)."""
    query = select(FineTuningEventRow).where(FineTuningEventRow.job_id == job_id)
    if after is not None and after.removeprefix("ftevent-").isdigit():
        query = query.where(FineTuningEventRow.seq < int(after.removeprefix("ftevent-")))
    rows = session.scalars(query.order_by(FineTuningEventRow.seq.desc()).limit(limit + 1)).all()
    events = [
        EventRecord(
            seq=r.seq,
            job_id=r.job_id,
            created_at=r.created_at,
            level=r.level,
            type=r.type,
            message=r.message,
            data=json.loads(r.data) if r.data else None,
        )
        for r in rows[:limit]
    ]
    return events, len(rows) > limit


def add_checkpoint(
    session: Session, job_id: str, created_at: int, step: int, path: str, metrics: dict[str, Any]
) -> None:
    session.add(
        FineTuningCheckpointRow(
            job_id=job_id, created_at=created_at, step=step, path=path, metrics=json.dumps(metrics)
        )
    )


def forget_checkpoints(session: Session, job_id: str, keep_paths: Sequence[str]) -> int:
    """Drop the job's checkpoint rows whose directory is not in ``keep_paths``."""
    rows = session.scalars(
        select(FineTuningCheckpointRow).where(FineTuningCheckpointRow.job_id == job_id)
    ).all()
    gone = [row for row in rows if row.path not in set(keep_paths)]
    for row in gone:
        session.delete(row)
    return len(gone)


def page_checkpoints(
    session: Session, job_id: str, *, after: str | None, limit: int
) -> tuple[list[CheckpointRecord], bool]:
    query = select(FineTuningCheckpointRow).where(FineTuningCheckpointRow.job_id == job_id)
    if after is not None and after.removeprefix("ftckpt-").isdigit():
        query = query.where(FineTuningCheckpointRow.seq < int(after.removeprefix("ftckpt-")))
    rows = session.scalars(
        query.order_by(FineTuningCheckpointRow.seq.desc()).limit(limit + 1)
    ).all()
    records = [
        CheckpointRecord(
            seq=r.seq,
            job_id=r.job_id,
            created_at=r.created_at,
            step=r.step,
            path=r.path,
            metrics=json.loads(r.metrics),
        )
        for r in rows[:limit]
    ]
    return records, len(rows) > limit
