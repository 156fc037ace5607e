"""The files use case (``/v1/files``): bytes on disk, metadata in the store.

A file's bytes are written to ``$EMBER_HOME/files/<id>`` (through a temporary name and an
atomic rename) before its row is added, and its row is removed before its bytes, so a listed
file can always be read. File names are sanitised (no directories, no control characters,
at most 255 bytes); the SHA-256 of the content is kept so later stages can spot duplicates.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import os
import re
import secrets
import time
import unicodedata
from pathlib import Path
from typing import Literal

from ember.core.request_context import ANONYMOUS, Caller
from ember.errors import (
    InsufficientStorageError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from ember.store import FileRecord, Store

#: What ``POST /v1/files`` accepts as ``purpose`` (the spec's ``CreateFileRequest``).
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
#: Purposes Ember itself writes files with (results of batches and fine-tuning jobs).
OUTPUT_PURPOSES = ("assistants_output", "batch_output", "fine-tune-results")

#: One page of a listing and whether more files follow it.
FilePage = tuple[list[FileRecord], bool]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")
_MAX_NAME_BYTES = 255


def sanitize_filename(name: str) -> str:
    """A name safe to show and to write: the last path component, no control characters."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".")
    if not name:
        return "file"
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_NAME_BYTES:
        stem, dot, suffix = name.rpartition(".")
        keep_suffix = dot and 0 < len(suffix) <= 16
        budget = _MAX_NAME_BYTES - (len(suffix.encode()) + 1 if keep_suffix else 0)
        head = (stem if keep_suffix else name).encode("utf-8")[:budget].decode("utf-8", "ignore")
        name = f"{head}.{suffix}" if keep_suffix else head
    return name


class FileService:
    """Create, read, list and delete uploaded files."""

    def __init__(self, store: Store, directory: Path, *, max_bytes: int) -> None:
        self.store = store
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.partial"):  # a write cut short by a crash
            stale.unlink(missing_ok=True)

    def create(
        self,
        filename: str,
        purpose: str,
        data: bytes,
        *,
        expires_after_seconds: int | None = None,
        allow_output_purposes: bool = False,
        caller: Caller = ANONYMOUS,
    ) -> FileRecord:
        """Store ``data`` as a new file; ``purpose`` must be an upload purpose."""
        allowed = UPLOAD_PURPOSES + (OUTPUT_PURPOSES if allow_output_purposes else ())
        if purpose not in allowed:
            raise InvalidRequestError(
                f"'{purpose}' is not a valid purpose; use one of: {', '.join(allowed)}.",
                param="purpose",
            )
        if not data:
            raise InvalidRequestError("The file is empty.", param="file")
        if len(data) > self.max_bytes:
            raise PayloadTooLargeError(
                f"The file has {len(data)} bytes; the limit is {self.max_bytes} "
                "(setting `max_file_bytes`).",
                param="file",
            )
        now = int(time.time())
        record = FileRecord(
            id=f"file-{secrets.token_hex(12)}",
            filename=sanitize_filename(filename),
            purpose=purpose,
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created_at=now,
            expires_at=now + expires_after_seconds if expires_after_seconds else None,
            owner=caller.owner,
        )
        path = self._path(record.id)
        partial = path.with_suffix(".partial")
        try:
            with partial.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)  # a full disk keeps no half-written file
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise InsufficientStorageError(
                    f"The server's disk is full: the file ({len(data)} bytes) was not stored."
                ) from exc
            raise
        try:
            self.store.add_file(record)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return record

    def get(self, file_id: str, *, caller: Caller = ANONYMOUS) -> FileRecord:
        """The file, if it exists for ``caller`` (another tenant's file is a 404)."""
        self._purge_expired()
        record = self.store.get_file(file_id)
        if record is None or not caller.may_see(record.owner):
            raise NotFoundError(f"No such file: '{file_id}'.", param="file_id")
        return record

    def read(self, file_id: str, *, caller: Caller = ANONYMOUS) -> bytes:
        record = self.get(file_id, caller=caller)
        try:
            return self._path(record.id).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"The content of file '{file_id}' is missing from disk.", param="file_id"
            ) from exc

    def list(
        self,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        caller: Caller = ANONYMOUS,
    ) -> FilePage:
        """One page of ``caller``'s files and whether more follow."""
        self._purge_expired()
        return self.store.list_files(
            purpose=purpose, limit=limit, order=order, after=after, owner=caller.owner
        )

    def delete(self, file_id: str, *, caller: Caller = ANONYMOUS) -> FileRecord:
        record = self.get(file_id, caller=caller)
        self.store.remove_file(record.id)
        self._path(record.id).unlink(missing_ok=True)
        return record

    def find_by_sha256(self, sha256: str) -> builtins.list[FileRecord]:
        return self.store.files_by_sha256(sha256)

    def _path(self, file_id: str) -> Path:
        if not re.fullmatch(r"file-[0-9a-f]+", file_id):
            raise NotFoundError(f"No such file: '{file_id}'.", param="file_id")
        return self.directory / file_id

    def _purge_expired(self) -> None:
        for file_id in self.store.expired_files(int(time.time())):
            self.store.remove_file(file_id)
            self._path(file_id).unlink(missing_ok=True)
