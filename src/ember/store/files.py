"""The ``files`` table: metadata of uploaded files (``/v1/files``).

The bytes are not in the database: ``ember.services.files`` keeps them under
``$EMBER_HOME/files/<id>``. A row is written only after its bytes are on disk, and removed
before they are, so a row always has its bytes. ``seq`` is the insertion order that listings
sort and page by (``created_at`` has one-second ties).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ember.store.tables import FileRow


@dataclass(frozen=True)
class FileRecord:
    """One uploaded file, as the store knows it."""

    id: str
    filename: str
    purpose: str
    bytes: int
    sha256: str
    created_at: int
    expires_at: int | None = None
    owner: str | None = None  # the tenant that uploaded it; None: the operator

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``OpenAIFile`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


def _record(row: FileRow) -> FileRecord:
    return FileRecord(
        id=row.id,
        filename=row.filename,
        purpose=row.purpose,
        bytes=row.bytes,
        sha256=row.sha256,
        created_at=row.created_at,
        expires_at=row.expires_at,
        owner=row.owner,
    )


def add(session: Session, record: FileRecord) -> None:
    session.add(
        FileRow(
            id=record.id,
            filename=record.filename,
            purpose=record.purpose,
            bytes=record.bytes,
            sha256=record.sha256,
            created_at=record.created_at,
            expires_at=record.expires_at,
            owner=record.owner,
        )
    )


def get(session: Session, file_id: str) -> FileRecord | None:
    row = session.scalars(select(FileRow).where(FileRow.id == file_id)).first()
    return _record(row) if row else None


def page(
    session: Session,
    *,
    purpose: str | None,
    limit: int,
    order: Literal["asc", "desc"],
    after: str | None,
    owner: str | None = None,
) -> tuple[list[FileRecord], bool]:
    """One page of files in ``order`` of upload, after the file ``after``; and whether more.
    ``owner``: only that tenant's files (None: every file)."""
    query = select(FileRow)
    if owner is not None:
        query = query.where(FileRow.owner == owner)
    if purpose is not None:
        query = query.where(FileRow.purpose == purpose)
    if after is not None:
        cursor = session.scalars(select(FileRow.seq).where(FileRow.id == after)).first()
        if cursor is not None:
            query = query.where(FileRow.seq > cursor if order == "asc" else FileRow.seq < cursor)
    query = query.order_by(FileRow.seq.asc() if order == "asc" else FileRow.seq.desc())
    rows = session.scalars(query.limit(limit + 1)).all()
    return [_record(row) for row in rows[:limit]], len(rows) > limit


def remove(session: Session, file_id: str) -> bool:
    return bool(session.execute(delete(FileRow).where(FileRow.id == file_id)).rowcount)  # type: ignore[attr-defined]


def expired(session: Session, now: int) -> list[str]:
    query = select(FileRow.id).where(FileRow.expires_at.is_not(None), FileRow.expires_at <= now)
    return list(session.scalars(query).all())


def by_sha256(session: Session, sha256: str) -> list[FileRecord]:
    rows = session.scalars(select(FileRow).where(FileRow.sha256 == sha256).order_by(FileRow.seq))
    return [_record(row) for row in rows]
