"""HTTP access to a Hugging Face-compatible hub: list a repo, download one file verified.

:class:`HubClient` owns the wire: the tree API (``GET /api/models/{repo}/tree/{revision}``),
the resolve endpoint (``GET /{repo}/resolve/{revision}/{path}``, redirects followed), the
bearer token, retries with backoff, and the translation of httpx errors and HTTP statuses
into Ember's (401/403 -> :class:`HubError` naming ``EMBER_HUB_TOKEN``, 404 ->
:class:`NotFoundError`). What to fetch and what to register is ``ember.models.hub``'s job.

A file is written as ``<name>.part`` and renamed only once its size and hash match what the
hub announced: sha256 for LFS files, the git blob sha1 for the others. A ``.part`` left by
an interrupted download is resumed with ``Range: bytes=N-``; a server that answers 200
instead of 206 is taken from byte 0 again.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import httpx

from ember import __version__
from ember.errors import DownloadVerificationError, HubError, NotFoundError

_CHUNK_BYTES = 1024 * 1024
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_CONTENT_RANGE_START = re.compile(r"^bytes (\d+)-")


@dataclass(frozen=True)
class HubFile:
    """One file of a repo, as the tree API announces it."""

    path: str
    size: int
    blob_sha1: str  # the git blob id; for an LFS file it names the pointer, not the content
    sha256: str | None = None  # set for LFS files

    @property
    def algorithm(self) -> str:
        return "sha256" if self.sha256 else "git blob sha1"

    @property
    def expected_digest(self) -> str:
        return self.sha256 or self.blob_sha1

    def new_hash(self) -> Any:
        """A hash object that ends at :attr:`expected_digest` when fed the file's bytes."""
        if self.sha256:
            return hashlib.sha256()
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"blob {self.size}\0".encode())
        return digest


class _RetryableError(Exception):
    """An attempt failed in a way that another attempt may not (dropped connection, 503)."""


class _PartialFile:
    """A ``.part`` file and the running hash of the bytes it holds."""

    def __init__(self, path: Path, file: HubFile) -> None:
        self.path = path
        self.file = file
        self.digest = file.new_hash()
        self.count = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > file.size:
            path.unlink()

    def sync(self) -> None:
        """Make the hash cover what is on disk (a ``.part`` left by an earlier pull)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if size != self.count:
            self.digest, self.count = _hash_prefix(self.path, self.file, size), size

    def restart(self) -> None:
        self.path.write_bytes(b"")
        self.digest, self.count = self.file.new_hash(), 0

    def add(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.count += len(chunk)


class HubClient:
    """HTTP access to one hub: list a repo's files, download one file verified."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        retries: int = 4,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": f"ember/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        # httpx drops Authorization when a redirect leaves the hub's host (LFS files are
        # served from a CDN), so the token never travels further than the hub.
        self._http = httpx.Client(
            headers=headers, timeout=_TIMEOUT, follow_redirects=True, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def list_files(self, repo: str, revision: str) -> list[HubFile]:
        """Every file of ``repo`` at ``revision``, following the tree API's pagination."""
        url: str | None = f"{self.base_url}/api/models/{repo}/tree/{quote(revision, safe='')}"
        params: dict[str, str] | None = {"recursive": "true"}
        files: list[HubFile] = []
        while url is not None:
            response = self._get(url, params, repo=repo, revision=revision)
            try:
                for entry in response.json():
                    if entry.get("type") != "file":
                        continue
                    lfs = entry.get("lfs") or {}
                    files.append(
                        HubFile(
                            path=safe_path(str(entry["path"])),
                            size=int(entry["size"]),
                            blob_sha1=str(entry["oid"]),
                            sha256=str(lfs["oid"]) if lfs else None,
                        )
                    )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise HubError(
                    f"The hub at {self.base_url} sent a file list for '{repo}' that Ember "
                    "cannot read; is EMBER_HUB_URL a Hugging Face-compatible hub?"
                ) from exc
            url = response.links.get("next", {}).get("url")
            params = None  # the next-page URL carries its own query
        return files

    def download(
        self,
        repo: str,
        revision: str,
        file: HubFile,
        target: Path,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Fetch ``file`` to ``target`` through ``target.part``: resume, retry, verify."""
        report = on_progress or (lambda _done: None)
        if _already_there(target, file):
            report(file.size)
            return
        url = f"{self.base_url}/{repo}/resolve/{quote(revision, safe='')}/{quote(file.path)}"
        partial = _PartialFile(target.with_name(target.name + ".part"), file)
        failures = 0
        while True:
            partial.sync()
            report(partial.count)
            if partial.count >= file.size:
                break
            before = partial.count
            try:
                self._fetch(url, partial, report, repo, revision)
            except _RetryableError as exc:
                if partial.count > before:
                    failures = 0  # a try that made progress is not a failure
                    continue
                failures += 1
                if failures > self.retries:
                    raise HubError(
                        f"Downloading '{file.path}' from '{repo}' kept failing ({exc}); run "
                        f"the pull again to resume from byte {before}."
                    ) from exc.__cause__
                time.sleep(self.backoff_s * 2 ** (failures - 1))
        actual = partial.digest.hexdigest()
        if partial.count != file.size or actual != file.expected_digest:
            partial.path.unlink(missing_ok=True)
            raise DownloadVerificationError(
                f"'{file.path}' from '{repo}' failed verification: the hub announced "
                f"{file.size} bytes with {file.algorithm} {file.expected_digest}, Ember got "
                f"{partial.count} bytes with {file.algorithm} {actual}. The partial file was "
                "deleted; pull again, and if it fails again the hub is serving a damaged file."
            )
        os.replace(partial.path, target)

    def _fetch(
        self,
        url: str,
        partial: _PartialFile,
        report: Callable[[int], None],
        repo: str,
        revision: str,
    ) -> None:
        """One GET, appended to the partial file from where it ends."""
        offset = partial.count
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code in _TRANSIENT_STATUSES:
                    raise _RetryableError(f"HTTP {response.status_code}")
                _raise_for_status(response, repo, revision, partial.file.path)
                if offset and not _resumes_at(response, offset):
                    partial.restart()  # the server ignored the range: take it from byte 0
                with partial.path.open("ab") as out:
                    for chunk in response.iter_bytes():  # as they arrive: a drop loses none
                        out.write(chunk)
                        partial.add(chunk)
                        report(partial.count)
        except httpx.TransportError as exc:
            raise _RetryableError(type(exc).__name__) from exc

    def _get(
        self, url: str, params: dict[str, str] | None, *, repo: str, revision: str
    ) -> httpx.Response:
        failures = 0
        while True:
            try:
                response = self._http.get(url, params=params)
            except httpx.TransportError as exc:
                if failures >= self.retries:
                    raise HubError(
                        f"Could not reach the hub at {self.base_url} ({type(exc).__name__}). "
                        "Check the network, or EMBER_HUB_URL."
                    ) from exc
            else:
                if response.status_code not in _TRANSIENT_STATUSES or failures >= self.retries:
                    _raise_for_status(response, repo, revision, None)
                    return response
            failures += 1
            time.sleep(self.backoff_s * 2 ** (failures - 1))


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    match = _CONTENT_RANGE_START.match(response.headers.get("Content-Range", ""))
    return response.status_code == 206 and match is not None and int(match[1]) == offset


def _raise_for_status(response: httpx.Response, repo: str, revision: str, path: str | None) -> None:
    status = response.status_code
    if status < 400:
        return
    where = f"'{repo}' at revision '{revision}'" + (f" (file '{path}')" if path else "")
    if status in (401, 403):
        raise HubError(
            f"The hub refused access to {where} (HTTP {status}). If the repo is private or "
            "gated, set EMBER_HUB_TOKEN to a token that may read it. Hugging Face also "
            "answers this way for a repo that does not exist, so check its name too."
        )
    if status == 404:
        # Hugging Face says which part was missing in a header; the body is not needed.
        messages = {
            "RepoNotFound": f"The repo '{repo}' does not exist on the hub.",
            "RevisionNotFound": f"The repo '{repo}' has no revision '{revision}'.",
            "EntryNotFound": f"The repo '{repo}' at revision '{revision}' has no file '{path}'.",
        }
        raise NotFoundError(
            messages.get(
                response.headers.get("X-Error-Code", ""),
                f"Nothing found on the hub for {where}: the repo, the revision or the file "
                "does not exist.",
            )
        )
    raise HubError(f"The hub answered HTTP {status} for {where}.")


def _hash_prefix(part: Path, file: HubFile, length: int) -> Any:
    digest = file.new_hash()
    with part.open("rb") as source:
        remaining = length
        while remaining and (block := source.read(min(_CHUNK_BYTES, remaining))):
            digest.update(block)
            remaining -= len(block)
    return digest


def _already_there(target: Path, file: HubFile) -> bool:
    """Whether an earlier pull left this very file (a re-pull then costs one read)."""
    if not target.is_file() or target.stat().st_size != file.size:
        return False
    return bool(_hash_prefix(target, file, file.size).hexdigest() == file.expected_digest)


def safe_path(path: str) -> str:
    """A repo path that stays inside the model's directory once joined to it."""
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or pure.is_absolute()
        or any(p in ("", ".", "..") for p in pure.parts)
    ):
        raise HubError(f"The hub listed a file with an unsafe path: {path!r}.")
    return pure.as_posix()
