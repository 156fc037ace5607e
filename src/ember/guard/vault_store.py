"""Conversation vaults kept between turns, encrypted at rest, with an expiry.

Redaction numbers values in order of appearance, so within one request the same value always
gets the same placeholder. Across turns the vault is kept here: when a redacted request
completes, its mapping is stored under a key derived from the conversation as the client will
resend it (the messages it sent plus the answer it got); the next turn, whose history is that
conversation, finds the mapping by the same key and keeps every earlier placeholder. A client
that edits or drops history simply starts a fresh vault. Only someone holding the whole
conversation (values included) can derive a key, so one conversation's vault never serves
another.

Each vault is one row of ``guard_vault`` (migration m006): the mapping as JSON, sealed with
AES-GCM under a 256-bit key in ``$EMBER_HOME/guard_vault.key`` (created with mode 0600), the
row's key bound as associated data. Rows expire after ``guard_vault_ttl_s``; expired rows are
never read and are purged on each save.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, text

from ember.core.types import ChatMessage
from ember.guard.vault import PiiVault

KEY_FILE = "guard_vault.key"
_NONCE_BYTES = 12


def conversation_key(messages: Sequence[ChatMessage]) -> str:
    """The key of a conversation: a hash of its messages' roles and text, in order."""
    canonical = json.dumps(
        [[m.role, m.content or ""] for m in messages], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_or_create_key(home: Path) -> bytes:
    """The vault key from ``home``, created (0600) on first use."""
    path = home / KEY_FILE
    if path.exists():
        key = path.read_bytes()
        if len(key) != 32:
            raise ValueError(f"{path} is not a 256-bit key")
        return key
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


class VaultStore:
    """Sealed conversation vaults in the store's database."""

    def __init__(self, engine: Engine, key: bytes, ttl_s: float) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._aead = AESGCM(key)

    def load(self, conversation: str) -> PiiVault | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT sealed FROM guard_vault "
                    "WHERE conversation_key = :k AND expires_at > :now"
                ),
                {"k": conversation, "now": time.time()},
            ).first()
        if row is None:
            return None
        sealed = bytes(row[0])
        try:
            plain = self._aead.decrypt(
                sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], conversation.encode()
            )
        except InvalidTag:
            return None  # another key, or tampered: start afresh rather than trust it
        return PiiVault.from_mapping(json.loads(plain))

    def save(self, conversation: str, vault: PiiVault) -> None:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = json.dumps(vault.to_mapping(), ensure_ascii=False).encode("utf-8")
        sealed = nonce + self._aead.encrypt(nonce, plain, conversation.encode())
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO guard_vault (conversation_key, sealed, created_at, expires_at)"
                    " VALUES (:k, :s, :c, :e) ON CONFLICT (conversation_key) DO UPDATE SET"
                    " sealed = excluded.sealed, created_at = excluded.created_at,"
                    " expires_at = excluded.expires_at"
                ),
                {"k": conversation, "s": sealed, "c": now, "e": now + self.ttl_s},
            )
        self.purge()

    def purge(self) -> int:
        """Delete expired vaults; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                text("DELETE FROM guard_vault WHERE expires_at <= :now"), {"now": time.time()}
            )
        return int(result.rowcount or 0)
