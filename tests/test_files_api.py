"""``/v1/files`` through the real server with the official client."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from ember.services.files import sanitize_filename
from tests.conftest import RunningServer, client_for, start_server, stop_server

MAX_FILE_BYTES = 4096
CONFIG = f"""
preload = []
n_threads = 2
max_file_bytes = {MAX_FILE_BYTES}
"""


@pytest.fixture(scope="module")
def files_server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ember-files"), backend + CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def files_client(files_server: RunningServer) -> Iterator[openai.OpenAI]:
    with client_for(files_server) as client:
        yield client


def test_upload_retrieve_content_delete(
    files_client: openai.OpenAI, files_server: RunningServer
) -> None:
    data = '{"messages": [{"role": "user", "content": "你好"}]}\n'.encode()
    created = files_client.files.create(
        file=("../../etc/训练 数据.jsonl", io.BytesIO(data)), purpose="fine-tune"
    )
    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.bytes == len(data)
    assert created.purpose == "fine-tune"
    assert created.filename == "训练 数据.jsonl"  # directories stripped, unicode kept
    assert created.status == "processed"
    assert (files_server.home / "files" / created.id).read_bytes() == data

    retrieved = files_client.files.retrieve(created.id)
    assert retrieved == created
    assert files_client.files.content(created.id).read() == data

    deleted = files_client.files.delete(created.id)
    assert deleted.id == created.id and deleted.deleted is True
    assert not (files_server.home / "files" / created.id).exists()
    with pytest.raises(openai.NotFoundError):
        files_client.files.retrieve(created.id)


def test_list_filters_orders_and_pages(files_client: openai.OpenAI) -> None:
    ids = [
        files_client.files.create(
            file=(f"doc{i}.txt", io.BytesIO(f"text {i}".encode())), purpose="evals"
        ).id
        for i in range(5)
    ]
    other = files_client.files.create(file=("b.jsonl", io.BytesIO(b"{}\n")), purpose="batch")

    newest_first = [f.id for f in files_client.files.list(purpose="evals").data]
    assert newest_first == ids[::-1]
    assert other.id not in newest_first

    page = files_client.files.list(purpose="evals", limit=2, order="asc")
    assert [f.id for f in page.data] == ids[:2]
    assert page.has_more is True
    # The SDK's auto-pagination follows ``after`` from page to page.
    assert [f.id for f in page] == ids
    after = files_client.files.list(purpose="evals", order="asc", after=ids[2])
    assert [f.id for f in after.data] == ids[3:]
    assert after.has_more is False
    assert other.id in [f.id for f in files_client.files.list().data]


@pytest.mark.parametrize(
    ("call", "status", "param"),
    [
        (lambda c: c.files.retrieve("file-doesnotexist"), 404, "file_id"),
        (lambda c: c.files.content("file-doesnotexist"), 404, "file_id"),
        (lambda c: c.files.delete("file-doesnotexist"), 404, "file_id"),
        (lambda c: c.files.retrieve("../ember.db"), 404, None),
        (
            lambda c: c.files.create(file=("a.txt", io.BytesIO(b"x")), purpose="training"),
            400,
            "purpose",
        ),
        (
            lambda c: c.files.create(file=("a.txt", io.BytesIO(b"")), purpose="user_data"),
            400,
            "file",
        ),
        (
            lambda c: c.files.create(
                file=("big.txt", io.BytesIO(b"x" * (MAX_FILE_BYTES + 1))), purpose="user_data"
            ),
            413,
            "file",
        ),
    ],
)
def test_errors_are_openai_shaped(
    files_client: openai.OpenAI, call: object, status: int, param: str | None
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        call(files_client)  # type: ignore[operator]
    assert caught.value.status_code == status
    body = caught.value.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    if param is not None:
        assert body["error"]["param"] == param


def test_missing_purpose_and_expiry(files_server: RunningServer) -> None:
    response = httpx.post(f"{files_server.v1}/files", files={"file": ("a.txt", b"abc")})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "purpose"

    response = httpx.post(
        f"{files_server.v1}/files",
        files={"file": ("a.txt", b"abc")},
        data={
            "purpose": "user_data",
            "expires_after[anchor]": "created_at",
            "expires_after[seconds]": "3600",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["expires_at"] == body["created_at"] + 3600

    response = httpx.post(
        f"{files_server.v1}/files",
        files={"file": ("a.txt", b"abc")},
        data={"purpose": "user_data", "expires_after[seconds]": "60"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "expires_after.seconds"


def test_files_survive_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_server(home, CONFIG)
    try:
        data = "持久 durable".encode()
        with client_for(first) as client:
            created = client.files.create(file=("d.txt", data), purpose="assistants")
    finally:
        stop_server(first)
    second = start_server(home, CONFIG)
    try:
        with client_for(second) as client:
            assert client.files.retrieve(created.id).filename == "d.txt"
            content = client.files.content(created.id).read()
        assert hashlib.sha256(content).digest() == hashlib.sha256(data).digest()
    finally:
        stop_server(second)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\笔记.md", "笔记.md"),
        ("bad\x00name\n.txt", "bad_name_.txt"),
        ("...", "file"),
        ("", "file"),
        ("a" * 300 + ".docx", "a" * 250 + ".docx"),
        ("中" * 100 + ".txt", "中" * 83 + ".txt"),
    ],
)
def test_sanitize_filename(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean
    assert len(sanitize_filename(raw).encode()) <= 255
