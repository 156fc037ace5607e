"""`ember db migrate --to URL` and `ember db verify --against URL` against a real PostgreSQL
with pgvector: a home built through the store's own methods is copied, compared table by
table, vector by vector, by its audit chain and by search; a dry run writes nothing; a copy
killed with SIGKILL half way resumes without duplicates; bad targets are one clear line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner, Result

from ember.cli.main import app
from ember.ground.lexical import terms
from ember.guard.vault import PiiVault
from ember.guard.vault_store import VaultStore
from ember.store import (
    AuditEntry,
    FileRecord,
    ModelRecord,
    Store,
    StoredResponse,
    create_store_engine,
)
from ember.store.chunks import NewChunk
from ember.store.fine_tuning import JobRecord
from ember.store.keys import KeyRecord
from ember.store.transfer import PROGRESS_TABLE, TRANSFER_LOCK
from ember.store.transfer_check import compare
from tests.conftest import fake_config, free_port, start_server, stop_server
from tests.postgres import PostgresServer

DIM = 16
ROOT = Path(__file__).resolve().parents[1]


def _unit(rows: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _add_vectors(store: Store, store_id: str, file_id: str, texts: list[str]) -> None:
    store.vectors.add_file(
        {
            "vector_store_id": store_id,
            "file_id": file_id,
            "batch_id": None,
            "created_at": int(time.time()),
            "attributes": {"name": file_id, "lang": "zh"},
            "chunking": {"type": "static"},
        }
    )
    vectors = _unit(len(texts), seed=len(file_id) + len(texts))
    chunks = [
        NewChunk(i, t, i // 10 or None, None, 10, " ".join(terms(t)), f"{file_id}-{i}")
        for i, t in enumerate(texts)
    ]
    for start in range(0, len(chunks), 200):
        end = start + 200
        assert store.chunks.insert_chunks(store_id, file_id, chunks[start:end], vectors[start:end])
    store.vectors.finish_file(store_id, file_id, "completed")


def build_home(home: Path, *, requests: int = 25, chunks: int = 40) -> Path:
    """A home whose database holds a row in every kind of table, written by the store."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "ember.toml").write_text("")
    store = Store(home / "ember.db")
    try:
        for n, owner in enumerate([None, "team-a", "团队"]):
            store.add_file(
                FileRecord(
                    f"file-{n}", f"文件 {n}.txt", "assistants", 100 + n, "ab" * 32, n, None, owner
                )
            )
        store.add_model(ModelRecord("org/m", "llamacpp", "chat", "/models/m", "hub", size_bytes=7))
        store.add_key(
            KeyRecord("key_1", "team-a", "salt", "hash", 1.5, ["m"], None, 0.25, None, 1000)
        )
        store.add_key(KeyRecord("key_2", "团队", "salt2", "hash2", 2.25, revoked_at=3.0))
        for n in range(5):
            store.append_audit(
                AuditEntry(
                    f"req_{n}",
                    "chat.completions",
                    "m",
                    "a" * 64,
                    "b" * 64,
                    verdicts={"pii": {"PHONE": n}},
                    input_text=f"问 {n}",
                    created_at=1e9 + n / 3,
                )
            )
        for n in range(requests):
            store.log_request(
                endpoint="chat.completions",
                model="m",
                prompt_tokens=n,
                completion_tokens=2 * n,
                latency_ms=n / 7,
                status="ok",
                tenant="team-a" if n % 2 else None,
                cost_usd=n * 1e-7,
                cache_hit=bool(n % 3),
            )
        store.add_fine_tuning_job(
            JobRecord(
                "ftjob-1", 10, "cancelled", None, None, None, {"id": "ftjob-1"}, {"base": "m"}
            )
        )
        store.add_fine_tuning_event("ftjob-1", "started", level="info")
        store.add_fine_tuning_checkpoint("ftjob-1", 10, "/ckpt/10", {"loss": 0.125})
        store.conversations.create("conv_1", 5, {"topic": "价格"})
        store.conversations.add_items(
            "conv_1",
            [{"id": f"msg_{i}", "role": "user", "content": f"第 {i} 条"} for i in range(3)],
        )
        store.save_response(
            StoredResponse("resp_1", "m", 6, None, [{"role": "user"}], {"id": "resp_1"})
        )
        store.synth.create(
            {"id": "synth_1", "created_at": 7, "status": "queued"}, ["段落一", "two"]
        )
        vault = PiiVault()
        vault.placeholder("PHONE", "13800138000")
        VaultStore(store.engine, b"k" * 32, 3600).save("conversation-1", vault)
        for store_id in ("vs_a", "vs_b"):
            store.vectors.create_store(
                {
                    "id": store_id,
                    "name": store_id,
                    "created_at": 0,
                    "last_active_at": 0,
                    "expires_at": None,
                }
            )
        texts = [f"文档 {i} 讲述第 {i} 号产品的价格" for i in range(chunks)]
        _add_vectors(store, "vs_a", "file-0", texts)
        _add_vectors(store, "vs_b", "file-1", texts[: chunks // 2])
        store.writer.flush()
    finally:
        store.close()
    return home / "ember.db"


def ember_db(home: Path, *args: str) -> Result:
    env = {"EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
    return CliRunner().invoke(app, ["db", *args], env=env)


@pytest.fixture
def target(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


def _same(source_path: Path, url: str) -> None:
    source, copy = Store(source_path), Store(url)
    try:
        checks = compare(source, copy)
        assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
        kinds = {c.kind for c in checks}
        assert kinds == {"table", "vectors", "audit", "search"}
    finally:
        source.close()
        copy.close()


def test_migrate_copies_every_table_vectors_audit_and_search(tmp_path: Path, target: str) -> None:
    source = build_home(tmp_path / "home")
    result = ember_db(tmp_path / "home", "migrate", "--to", target, "--batch", "7")
    assert result.exit_code == 0, result.output
    for name in ("files", "api_keys", "audit_log", "request_log", "chunks", "guard_vault"):
        assert f"  {name} " in result.output
    assert "chunk_vectors_16 vs_a" in result.output and "DIFFERS" not in result.output
    assert "Migrated and verified" in result.output
    _same(source, target)

    copy = Store(target)
    try:
        assert PROGRESS_TABLE not in inspect(copy.engine).get_table_names()
        assert copy.verify_audit().ok and copy.verify_audit().checked == 5
        assert copy.get_key("key_2").name == "团队"  # type: ignore[union-attr]
        assert copy.conversations.items("conv_1")[2]["content"] == "第 2 条"
        ids, vectors = copy.chunks.store_vectors("vs_a", DIM)
        assert len(ids) == 40 and copy.chunks.nearest("vs_a", vectors[3], 1)[0][0] == ids[3]
        # Identity sequences moved past the copied keys: new rows get new keys.
        copy.add_file(FileRecord("file-new", "n.txt", "assistants", 1, "cd" * 32, 9))
        files, _more = copy.list_files(order="asc")
        assert [f.id for f in files][-1] == "file-new"
        copy.log_request(
            endpoint="e",
            model="m",
            prompt_tokens=1,
            completion_tokens=1,
            latency_ms=1,
            status="ok",
        ).result(timeout=10)
        assert copy.count_requests() == 26
    finally:
        copy.close()

    # The same home migrated again: the target holds data now, and says how to compare.
    again = ember_db(tmp_path / "home", "migrate", "--to", target)
    assert again.exit_code == 1 and "already holds Ember data" in again.stderr
    assert "ember db verify" in again.stderr and "Traceback" not in again.output


def test_verify_names_what_differs(tmp_path: Path, target: str) -> None:
    build_home(tmp_path / "home", chunks=12)
    assert ember_db(tmp_path / "home", "migrate", "--to", target).exit_code == 0
    same = ember_db(tmp_path / "home", "verify", "--against", target)
    assert same.exit_code == 0 and "The same." in same.output, same.output
    copy = Store(target)
    try:
        ids, _vectors = copy.chunks.store_vectors("vs_b", DIM)
        with copy.engine.begin() as conn:
            conn.execute(text("UPDATE files SET filename = 'edited' WHERE id = 'file-1'"))
            conn.execute(text("UPDATE audit_log SET status = 'error' WHERE seq = 3"))
            copy.chunks.index.delete(conn, "chunk_vectors_16", [int(ids[0])])
    finally:
        copy.close()
    differs = ember_db(tmp_path / "home", "verify", "--against", target)
    assert differs.exit_code == 1 and "the databases differ" in differs.stderr
    assert "DIFFERS" in differs.stdout
    source, copy = Store(tmp_path / "home" / "ember.db"), Store(target)
    try:
        marked = {(c.kind, c.name) for c in compare(source, copy) if not c.ok}
    finally:
        source.close()
        copy.close()
    assert marked == {
        ("table", "files"),
        ("table", "audit_log"),
        ("vectors", "chunk_vectors_16 vs_b"),
        ("audit", "audit_log chain"),
        ("search", "vs_b"),  # its first vector, a query, is gone from the copy
    }


def test_dry_run_writes_nothing(tmp_path: Path, target: str) -> None:
    source = build_home(tmp_path / "home", chunks=10)
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    result = ember_db(tmp_path / "home", "migrate", "--to", target, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "no Ember tables yet" in result.output and "nothing was written" in result.output
    assert "request_log" in result.output and "25" in result.output
    assert "chunk_vectors_16 vs_b" in result.output and "5 vectors" in result.output
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    copy = Store(target)  # opening it is what creates tables: none were there before
    try:
        with copy.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM files")).scalar() == 0
    finally:
        copy.close()


def _free_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/ember"


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("sqlite:///elsewhere.db", "must be a PostgreSQL URL"),
        ("just-a-name", "must be a PostgreSQL URL"),
        ("mysql://u@h/db", "must be a PostgreSQL URL"),
        ("postgresql://u@h:port/db", "not a database URL"),
        ("UNREACHABLE", "cannot connect to postgresql://postgres@127.0.0.1:"),
        ("MISSING_DATABASE", 'database "ember_no_such_db" does not exist'),
    ],
)
def test_bad_targets_are_one_clear_line(
    tmp_path: Path, postgres: PostgresServer, to: str, expected: str
) -> None:
    build_home(tmp_path / "home", requests=1, chunks=2)
    if to == "UNREACHABLE":
        to = _free_url()
    elif to == "MISSING_DATABASE":
        to = postgres.url("ember_no_such_db")
    for args in (["migrate", "--to", to], ["migrate", "--to", to, "--dry-run"]):
        result = ember_db(tmp_path / "home", *args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("Error: ") and expected in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_missing_home_and_same_database_are_refused(tmp_path: Path, target: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "ember.toml").write_text("")
    result = ember_db(empty, "migrate", "--to", target)
    assert result.exit_code == 1 and "no SQLite database to migrate" in result.stderr
    assert not (empty / "ember.db").exists()
    home = tmp_path / "home"
    build_home(home, requests=1, chunks=2)
    (home / "ember.toml").write_text(f'database_url = "{target}"\n')
    result = ember_db(home, "migrate", "--to", target)
    assert result.exit_code == 1 and "already uses" in result.stderr


def _progress(url: str) -> dict[str, tuple[int, bool]]:
    engine = create_store_engine(url)  # not a Store: reading must not race the migrations
    try:
        with engine.connect() as conn:
            if PROGRESS_TABLE not in inspect(conn).get_table_names():
                return {}
            rows = conn.execute(text(f"SELECT item, copied, done FROM {PROGRESS_TABLE}"))
            return {r[0]: (int(r[1]), bool(r[2])) for r in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("requests", "chunks", "item", "total"),
    [
        (6000, 600, "table:request_log", 6000),  # killed in a table
        (10, 3000, "vectors:chunk_vectors_16:vs_a", 3000),  # killed in a store's vectors
    ],
)
def test_a_migrate_killed_half_way_resumes_without_duplicates(
    tmp_path: Path, target: str, requests: int, chunks: int, item: str, total: int
) -> None:
    home = tmp_path / "home"
    source = build_home(home, requests=requests, chunks=chunks)
    env = {
        **os.environ,
        "EMBER_HOME": str(home),
        "EMBER_CONFIG": str(home / "ember.toml"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ember", "db", "migrate", "--to", target, "--batch", "20"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _progress(target).get(item, (0, False))[0] > 0:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    progress = _progress(target)
    copied, done = progress[item]
    assert 0 < copied < total and not done, progress

    result = ember_db(home, "migrate", "--to", target, "--batch", "500")
    assert result.exit_code == 0, result.output
    assert "Resuming the copy" in result.output and f"(resumed at {copied})" in result.output
    assert "DIFFERS" not in result.output
    _same(source, target)
    copy = Store(target)
    try:
        assert copy.count_requests() == requests
        with copy.engine.connect() as conn:
            vectors = conn.execute(text("SELECT COUNT(*) FROM chunk_vectors_16")).scalar()
            assert vectors == chunks + chunks // 2
    finally:
        copy.close()


def test_db_commands_have_help_and_are_documented() -> None:
    cli_doc = (ROOT / "docs" / "CLI.md").read_text()
    for command in (["db"], ["db", "migrate"], ["db", "verify"]):
        result = CliRunner().invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, result.output
        assert f"ember {' '.join(command)}" in cli_doc
    assert "## Moving a home to PostgreSQL" in cli_doc


def test_verify_of_an_empty_database_and_a_row_postgresql_cannot_hold(
    tmp_path: Path, target: str
) -> None:
    home = tmp_path / "home"
    build_home(home, requests=1, chunks=2)
    result = ember_db(home, "verify", "--against", target)
    assert result.exit_code == 1 and "holds no Ember database" in result.stderr
    engine = create_store_engine(target)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []  # verify wrote nothing
    finally:
        engine.dispose()
    # A text PostgreSQL cannot hold (a NUL character): the table and batch are named.
    store = Store(home / "ember.db")
    try:
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE responses SET model = :m"), {"m": "a\x00b"})
    finally:
        store.close()
    result = ember_db(home, "migrate", "--to", target)
    assert result.exit_code == 1 and "copying responses failed" in result.stderr
    assert "NUL" in result.stderr and "Traceback" not in result.output


def test_a_home_of_a_newer_ember_is_refused(tmp_path: Path, target: str) -> None:
    home = tmp_path / "home"
    build_home(home, requests=1, chunks=2)
    store = Store(home / "ember.db")
    try:
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO _migrations VALUES ('m999_future', 0)"))
    finally:
        store.close()
    for extra in ([], ["--dry-run"]):
        result = ember_db(home, "migrate", "--to", target, *extra)
        assert result.exit_code == 1 and "newer Ember" in result.stderr, result.output
        assert "m999_future" in result.stderr
    engine = create_store_engine(target)
    try:
        assert inspect(engine).get_table_names() == []  # refused before the target was touched
    finally:
        engine.dispose()


def test_the_server_runs_on_the_migrated_database(tmp_path: Path, target: str) -> None:
    home = tmp_path / "home"
    build_home(home, requests=3, chunks=12)
    assert ember_db(home, "migrate", "--to", target).exit_code == 0
    admin, operator = "sk-admin-migrate", "sk-operator-migrate"
    config = fake_config(
        f'admin_key = "{admin}"\napi_keys = ["{operator}"]\ndatabase_url = {json.dumps(target)}'
    )
    server = start_server(home, config)
    try:
        client = openai.OpenAI(base_url=server.v1, api_key=operator, max_retries=0, timeout=60)
        assert {f.id for f in client.files.list()} == {"file-0", "file-1", "file-2"}
        assert {s.id for s in client.vector_stores.list()} == {"vs_a", "vs_b"}
        assert client.vector_stores.files.list("vs_a").data[0].status == "completed"
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
        uploaded = client.files.create(file=("new.txt", b"new"), purpose="assistants")
        assert uploaded.id not in {"file-0", "file-1", "file-2"}
        verify = httpx.get(
            f"{server.v1}/ember/audit/verify", headers={"Authorization": f"Bearer {admin}"}
        ).json()
        # the chain copied from SQLite goes on in PostgreSQL, one record per request
        assert verify["ok"] and verify["checked"] >= 6, verify
    finally:
        stop_server(server)


def test_a_second_migrate_into_the_same_database_is_refused(tmp_path: Path, target: str) -> None:
    home = tmp_path / "home"
    build_home(home, requests=1, chunks=2)
    engine = create_store_engine(target)
    try:
        with engine.connect() as other:  # as a migrate running in another process holds it
            other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": TRANSFER_LOCK})
            result = ember_db(home, "migrate", "--to", target)
            assert result.exit_code == 1 and "another `ember db migrate`" in result.stderr
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": TRANSFER_LOCK})
            other.commit()
        assert ember_db(home, "migrate", "--to", target).exit_code == 0
    finally:
        engine.dispose()
