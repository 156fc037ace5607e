"""Conversation vaults across turns: stored encrypted in a real SQLite and a real PostgreSQL
database, found by the next turn, expired and purged; the key file is private."""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.core.request_context import RequestContext
from ember.core.types import ChatMessage
from ember.guard.analyzer import Analyzer
from ember.guard.vault import PiiVault
from ember.guard.vault_store import VaultStore, conversation_key, load_or_create_key
from ember.services.guard_stage import GuardStage
from ember.settings import GuardPolicy, Settings
from ember.store import Store

PHONE = "13812345678"
OTHER = "13987654321"


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = Store(database)
    yield opened
    opened.close()


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    mode = stat.S_IMODE((tmp_path / "guard_vault.key").stat().st_mode)
    assert mode == 0o600
    assert len(key) == 32
    assert load_or_create_key(tmp_path) == key


def test_vault_is_sealed_at_rest(tmp_path: Path, store: Store) -> None:
    vaults = VaultStore(store.engine, load_or_create_key(tmp_path), ttl_s=60)
    vault = PiiVault()
    assert vault.placeholder("PHONE", PHONE) == "<PHONE_1>"
    vaults.save("conv", vault)
    with store.engine.begin() as conn:
        sealed = bytes(conn.exec_driver_sql("SELECT sealed FROM guard_vault").scalar_one())
    assert PHONE.encode() not in sealed and b"PHONE" not in sealed
    if store.engine.dialect.name == "sqlite":  # nor anywhere in the file
        assert PHONE.encode() not in (tmp_path / "ember.db").read_bytes()
    loaded = vaults.load("conv")
    assert loaded is not None
    assert loaded.placeholder("PHONE", PHONE) == "<PHONE_1>"
    assert loaded.placeholder("PHONE", OTHER) == "<PHONE_2>"  # numbering continues
    # another key cannot open it; a row moved under another conversation key fails its tag
    assert VaultStore(store.engine, bytes(32), ttl_s=60).load("conv") is None
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE guard_vault SET conversation_key = 'other'")
    assert vaults.load("other") is None


def test_expired_vaults_are_not_read_and_are_purged(tmp_path: Path, store: Store) -> None:
    vaults = VaultStore(store.engine, load_or_create_key(tmp_path), ttl_s=0.2)
    vault = PiiVault()
    vault.placeholder("EMAIL", "a@example.com")
    vaults.save("old", vault)
    time.sleep(0.3)
    assert vaults.load("old") is None
    assert vaults.purge() == 1


def test_next_turn_reuses_the_conversation_vault(tmp_path: Path, store: Store) -> None:
    settings = Settings(home=tmp_path, guard=GuardPolicy(pii="redact"))
    vaults = VaultStore(store.engine, load_or_create_key(tmp_path), ttl_s=60)
    stage = GuardStage(settings, Analyzer(enabled=["phone_cn"]), None, None, vaults)
    first = [ChatMessage(role="user", content=f"我的手机是{PHONE}")]
    ctx = RequestContext("chat.completions", "m", list(first))
    asyncio.run(stage.on_request(ctx))
    assert ctx.messages[0].content == "我的手机是<PHONE_1>"
    ctx.output_text = f"好的，已记录{PHONE}。"  # the answer as the client received it
    asyncio.run(stage.on_complete(ctx))
    second = [
        *first,
        ChatMessage(role="assistant", content=ctx.output_text),
        ChatMessage(role="user", content=f"再加一个{OTHER}，还有{PHONE}"),
    ]
    assert vaults.load(conversation_key(second[:-1])) is not None  # the stored vault is found
    ctx2 = RequestContext("chat.completions", "m", list(second))
    asyncio.run(stage.on_request(ctx2))
    assert [m.content for m in ctx2.messages] == [
        "我的手机是<PHONE_1>",
        "好的，已记录<PHONE_1>。",
        "再加一个<PHONE_2>，还有<PHONE_1>",
    ]
    # an edited history is another conversation: a fresh vault, never the stored one
    assert vaults.load(conversation_key([ChatMessage(role="user", content="x")])) is None
