"""Schema migrations: an ordered list of named functions, each run once.

``_migrations`` records which have run. To change the schema, append a function to
``MIGRATIONS``; never edit or reorder one that has shipped. Each runs in its own transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text


def m001_initial(conn: Connection) -> None:
    conn.execute(
        text(
            """
            CREATE TABLE models (
                id TEXT PRIMARY KEY,
                engine TEXT NOT NULL,
                kind TEXT NOT NULL,
                path TEXT NOT NULL,
                source TEXT NOT NULL,
                revision TEXT NOT NULL,
                files TEXT NOT NULL,
                size_bytes INTEGER NOT NULL,
                gguf_file TEXT,
                created_at INTEGER NOT NULL
            )
            """
        )
    )
    conn.execute(
        text(
            """
            CREATE TABLE responses (
                id TEXT PRIMARY KEY,
                model TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                previous_response_id TEXT,
                conversation TEXT NOT NULL,
                response TEXT NOT NULL
            )
            """
        )
    )
    conn.execute(
        text(
            """
            CREATE TABLE request_log (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                created_at REAL NOT NULL,
                endpoint TEXT NOT NULL,
                model TEXT NOT NULL,
                prompt_tokens INTEGER NOT NULL,
                completion_tokens INTEGER NOT NULL,
                latency_ms REAL NOT NULL,
                status TEXT NOT NULL
            )
            """
        )
    )
    conn.execute(text("CREATE INDEX request_log_model ON request_log (model, created_at)"))


def m002_audit_log(conn: Connection) -> None:
    """The tamper-evident audit chain (see ``ember.store.audit``)."""
    conn.execute(
        text(
            """
            CREATE TABLE audit_log (
                seq INTEGER PRIMARY KEY,
                created_at REAL NOT NULL,
                request_id TEXT NOT NULL,
                tenant TEXT,
                endpoint TEXT NOT NULL,
                model TEXT NOT NULL,
                route TEXT,
                status TEXT NOT NULL,
                verdicts TEXT NOT NULL,
                input_sha256 TEXT NOT NULL,
                output_sha256 TEXT NOT NULL,
                input_text TEXT,
                output_text TEXT,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )
            """
        )
    )


def m006_guard_vault(conn: Connection) -> None:
    """The guard's conversation vaults, encrypted (see ``ember.guard.vault_store``)."""
    conn.execute(
        text(
            """
            CREATE TABLE guard_vault (
                conversation_key TEXT PRIMARY KEY,
                sealed BLOB NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL
            )
            """
        )
    )
    conn.execute(text("CREATE INDEX guard_vault_expires ON guard_vault (expires_at)"))


MIGRATIONS: list[Callable[[Connection], None]] = [m001_initial, m002_audit_log, m006_guard_vault]


def migrate(engine: Engine) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS _migrations "
                "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
        )
    for migration in MIGRATIONS:
        name = migration.__name__
        with engine.begin() as conn:
            done = conn.execute(
                text("SELECT 1 FROM _migrations WHERE name = :name"), {"name": name}
            ).first()
            if done:
                continue
            migration(conn)
            conn.execute(
                text("INSERT INTO _migrations (name, applied_at) VALUES (:name, :at)"),
                {"name": name, "at": time.time()},
            )
            applied_now.append(name)
    return applied_now
