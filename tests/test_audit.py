"""The tamper-evident audit log: written by the real server, checked by ``ember audit``.

Tampering is done the way an attacker would, with plain SQL on the real database file, and
the hashes a forger would compute follow the recipe documented in ``ember.store.audit``,
written out again here so that the documentation is tested too.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from conftest import SERVER_CONFIG, RunningServer, start_server, stop_server
from typer.testing import CliRunner, Result

from ember.cli.main import app
from ember.services.container import Services
from ember.settings import Settings
from ember.store import AuditEntry, Store

RECORDS = 5
ZEROS = "0" * 64


def recipe_hash(record: dict[str, object]) -> str:
    fields = {key: value for key, value in record.items() if key != "hash"}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        request_id=f"req_{n}",
        endpoint="chat.completions",
        model="m",
        input_sha256=sha256(f"in {n}"),
        output_sha256=sha256(f"out {n}"),
        verdicts={"pii": {"PHONE": n}, "injection": 0.25},
    )


def ember_cli(home: Path, *args: str) -> Result:
    config = home / "ember.toml"
    if not config.exists():
        config.write_text("")
    env = {"EMBER_HOME": str(home), "EMBER_CONFIG": str(config)}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    store = Store(tmp_path / "ember.db")
    for n in range(1, RECORDS + 1):
        store.append_audit(entry(n))
    store.close()
    return tmp_path


def rows(db: sqlite3.Connection) -> list[dict[str, object]]:
    db.row_factory = sqlite3.Row
    return [dict(row) for row in db.execute("SELECT * FROM audit_log ORDER BY seq")]


def forged(db: sqlite3.Connection, seq: int, prev_hash: str) -> dict[str, object]:
    record = {**rows(db)[0], "seq": seq, "prev_hash": prev_hash, "request_id": "req_forged"}
    record["hash"] = recipe_hash(record)
    return record


def insert(db: sqlite3.Connection, record: dict[str, object]) -> None:
    columns = ", ".join(record)
    marks = ", ".join("?" for _ in record)
    db.execute(f"INSERT INTO audit_log ({columns}) VALUES ({marks})", list(record.values()))


def edit_output_hash(db: sqlite3.Connection) -> None:
    db.execute("UPDATE audit_log SET output_sha256 = ? WHERE seq = 3", (sha256("other"),))


def edit_and_rehash(db: sqlite3.Connection) -> None:
    record = {**rows(db)[2], "verdicts": "{}"}
    record["hash"] = recipe_hash(record)
    db.execute("UPDATE audit_log SET verdicts = ?, hash = ? WHERE seq = 3", ("{}", record["hash"]))


def delete_middle(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit_log WHERE seq = 3")


def delete_first(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit_log WHERE seq = 1")


def swap_seq(db: sqlite3.Connection) -> None:
    db.execute("UPDATE audit_log SET seq = -2 WHERE seq = 2")
    db.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
    db.execute("UPDATE audit_log SET seq = 3 WHERE seq = -2")


def insert_at_end_wrong_prev(db: sqlite3.Connection) -> None:
    insert(db, forged(db, RECORDS + 1, prev_hash=str(rows(db)[-2]["hash"])))


def insert_in_middle(db: sqlite3.Connection) -> None:
    for seq in range(RECORDS, 2, -1):
        db.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq + 1, seq))
    insert(db, forged(db, 3, prev_hash=str(rows(db)[1]["hash"])))


def insert_first_wrong_prev(db: sqlite3.Connection) -> None:
    for seq in range(RECORDS, 0, -1):
        db.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq + 1, seq))
    insert(db, forged(db, 1, prev_hash="f" * 64))


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "why"),
    [
        (edit_output_hash, 3, "was edited"),
        (edit_and_rehash, 4, "prev_hash is not the hash of record 3"),
        (delete_middle, 4, "records 3..3 are missing"),
        (delete_first, 2, "records 1..1 are missing"),
        (swap_seq, 2, "prev_hash is not the hash of record 1"),
        (insert_at_end_wrong_prev, RECORDS + 1, f"prev_hash is not the hash of record {RECORDS}"),
        (insert_in_middle, 4, "prev_hash is not the hash of record 3"),
        (insert_first_wrong_prev, 1, "not the genesis hash"),
    ],
)
def test_verify_names_the_first_bad_record(
    home: Path, tamper: Callable[[sqlite3.Connection], None], bad_seq: int, why: str
) -> None:
    assert ember_cli(home, "audit", "verify").exit_code == 0
    with sqlite3.connect(home / "ember.db") as db:
        tamper(db)
    result = ember_cli(home, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert f"Audit log broken at record {bad_seq}:" in result.stderr
    assert why in result.stderr
    assert "OK" not in result.stdout


def test_an_untouched_log_verifies_and_exports_records_that_rehash(home: Path) -> None:
    result = ember_cli(home, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK, {RECORDS} records; head hash ")

    out = home / "audit.jsonl"
    assert ember_cli(home, "audit", "export", "--output", str(out)).exit_code == 0
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [record["seq"] for record in exported] == list(range(1, RECORDS + 1))
    prev = ZEROS
    for record in exported:
        assert record["prev_hash"] == prev
        assert recipe_hash(record) == record["hash"]
        prev = record["hash"]
    assert result.stdout.split()[-1] == prev
    assert json.loads(exported[0]["verdicts"]) == {"pii": {"PHONE": 1}, "injection": 0.25}

    stdout = ember_cli(home, "audit", "export").stdout
    assert stdout == out.read_text()

    tail = ember_cli(home, "audit", "tail", "-n", "2")
    assert tail.exit_code == 0, tail.output
    assert "req_5" in tail.stdout and "req_4" in tail.stdout and "req_3" not in tail.stdout


def test_iter_audit_pages_after_a_seq(home: Path) -> None:
    store = Store(home / "ember.db")
    try:
        assert [r.seq for r in store.iter_audit(after_seq=2)] == [3, 4, 5]
        assert [r.seq for r in store.iter_audit(after_seq=1, limit=2)] == [2, 3]
    finally:
        store.close()


def test_concurrent_appends_keep_one_unbroken_chain(database: str) -> None:
    # Two Store objects stand for two processes (server and CLI, or two replicas); each has
    # its own pool. On PostgreSQL the chain is locked by table; on SQLite by the write lock.
    stores = [Store(database), Store(database)]
    errors: list[BaseException] = []

    def append_many(worker: int) -> None:
        try:
            for n in range(25):
                stores[worker % 2].append_audit(entry(worker * 100 + n))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    verification = stores[0].verify_audit()
    assert verification.ok, verification
    assert verification.checked == 150
    assert sorted(r.request_id for r in stores[1].iter_audit()) == sorted(
        f"req_{w * 100 + n}" for w in range(6) for n in range(25)
    )
    for store in stores:
        store.close()


def test_audit_can_be_switched_off(tmp_path: Path) -> None:
    on = Services.build(Settings(home=tmp_path / "on"))
    off = Services.build(Settings(home=tmp_path / "off", audit_enabled=False))
    try:
        on_names = [stage.name for stage in on.pipeline.stages]
        off_names = [stage.name for stage in off.pipeline.stages]
        # commit completes last (waits for the records), audit just before it
        assert on_names[:2] == ["commit", "audit"] and on_names[-1] == "usage"
        assert "guard" in on_names
        assert off_names == [name for name in on_names if name != "audit"]
    finally:
        on.store.close()
        off.store.close()


def chat(client: openai.OpenAI, prompt: str) -> str:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=8,
        temperature=0,
    )
    return completion.choices[0].message.content or ""


def audit_records(home: Path) -> list[dict[str, object]]:
    with sqlite3.connect(home / "ember.db") as db:
        return rows(db)


def test_the_server_appends_a_record_per_request(
    server: RunningServer, client: openai.OpenAI
) -> None:
    before = len(audit_records(server.home))
    answer = chat(client, "Say hello.")
    records = audit_records(server.home)
    assert len(records) == before + 1
    record = records[-1]
    assert record["endpoint"] == "chat.completions"
    assert record["model"] == "smollm2-135m-instruct"
    assert record["status"] == "ok"
    assert record["output_sha256"] == sha256(answer)
    assert record["input_text"] is None and record["output_text"] is None
    verdicts = json.loads(str(record["verdicts"]))
    assert verdicts["pii"] == {} and verdicts["pii_action"] == "allow"  # the guard's verdicts

    result = ember_cli(server.home, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK, {len(records)} records")


@pytest.fixture(scope="module")
def raw_text_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = SERVER_CONFIG.replace("[aliases]", "audit_raw_text = true\n\n[aliases]")
    running = start_server(tmp_path_factory.mktemp("ember-raw"), config)
    yield running
    stop_server(running)


def test_raw_text_is_kept_only_when_configured(raw_text_server: RunningServer) -> None:
    client = openai.OpenAI(
        base_url=raw_text_server.v1, api_key="not-needed", max_retries=0, timeout=300
    )
    answer = chat(client, "Say hello to 13800138000.")
    record = audit_records(raw_text_server.home)[-1]
    assert record["output_text"] == answer
    assert record["output_sha256"] == sha256(answer)
    input_text = str(record["input_text"])
    assert "13800138000" in input_text
    assert record["input_sha256"] == sha256(input_text)
    assert json.loads(input_text)[0]["content"] == "Say hello to 13800138000."
