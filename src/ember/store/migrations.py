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


def m003_files(conn: Connection) -> None:
    """Uploaded files (``/v1/files``); their bytes live under ``$EMBER_HOME/files/``."""
    conn.execute(
        text(
            """
            CREATE TABLE files (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                filename TEXT NOT NULL,
                purpose TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER
            )
            """
        )
    )
    conn.execute(text("CREATE INDEX files_purpose ON files (purpose, seq)"))
    conn.execute(text("CREATE INDEX files_sha256 ON files (sha256)"))


def m003b_vector_stores(conn: Connection) -> None:
    """Vector stores, their files (the ingestion journal) and chunks (``ember.store.vectors``,
    ``ember.store.chunks``).

    The vectors themselves live in a sqlite-vec ``vec0`` table per dimension, created on
    first use because its shape depends on the embedder.
    """
    statements = [
        """
        CREATE TABLE vector_stores (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT,
            created_at INTEGER NOT NULL,
            last_active_at INTEGER,
            metadata TEXT NOT NULL DEFAULT '{}',
            expires_after TEXT,
            expires_at INTEGER
        )
        """,
        """
        CREATE TABLE vector_store_file_batches (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            vector_store_id TEXT NOT NULL REFERENCES vector_stores (id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL,
            cancelled INTEGER NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE vector_store_files (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            vector_store_id TEXT NOT NULL REFERENCES vector_stores (id) ON DELETE CASCADE,
            file_id TEXT NOT NULL,
            batch_id TEXT,
            created_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            last_error TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            chunking TEXT NOT NULL,
            usage_bytes INTEGER NOT NULL DEFAULT 0,
            UNIQUE (vector_store_id, file_id)
        )
        """,
        "CREATE INDEX vector_store_files_status ON vector_store_files (status)",
        """
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            vector_store_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            text TEXT NOT NULL,
            page INTEGER,
            heading TEXT,
            tokens INTEGER NOT NULL,
            terms TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            UNIQUE (vector_store_id, file_id, position)
        )
        """,
    ]
    for statement in statements:
        conn.execute(text(statement))


def m004_keys_usage(conn: Connection) -> None:
    """API keys (salted hashes only) and usage columns on the request log (issue 6)."""
    conn.execute(
        text(
            """
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                salt TEXT NOT NULL,
                hash TEXT NOT NULL,
                models TEXT,
                policy TEXT,
                budget_usd_day REAL,
                budget_usd_month REAL,
                budget_tokens_day INTEGER,
                budget_tokens_month INTEGER,
                rpm INTEGER,
                tpm INTEGER,
                created_at REAL NOT NULL,
                revoked_at REAL
            )
            """
        )
    )
    for column in (
        "tenant TEXT",
        "target TEXT",
        "cost_usd REAL NOT NULL DEFAULT 0",
        "cache_hit INTEGER NOT NULL DEFAULT 0",
        "route_reason TEXT",
    ):
        conn.execute(text(f"ALTER TABLE request_log ADD COLUMN {column}"))
    conn.execute(text("CREATE INDEX request_log_tenant ON request_log (tenant, created_at)"))


def m005_fine_tuning(conn: Connection) -> None:
    """Fine-tuning jobs, their events and checkpoints (``/v1/fine_tuning/jobs``)."""
    conn.execute(
        text(
            """
            CREATE TABLE fine_tuning_jobs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                status TEXT NOT NULL,
                requested TEXT,
                worker_pid INTEGER,
                fine_tuned_model TEXT,
                job TEXT NOT NULL,
                internal TEXT NOT NULL
            )
            """
        )
    )
    conn.execute(text("CREATE INDEX fine_tuning_jobs_status ON fine_tuning_jobs (status)"))
    conn.execute(
        text(
            """
            CREATE TABLE fine_tuning_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                job_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                level TEXT NOT NULL,
                type TEXT NOT NULL,
                message TEXT NOT NULL,
                data TEXT
            )
            """
        )
    )
    conn.execute(text("CREATE INDEX fine_tuning_events_job ON fine_tuning_events (job_id, seq)"))
    conn.execute(
        text(
            """
            CREATE TABLE fine_tuning_checkpoints (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                job_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                step INTEGER NOT NULL,
                path TEXT NOT NULL,
                metrics TEXT NOT NULL
            )
            """
        )
    )
    conn.execute(
        text("CREATE INDEX fine_tuning_checkpoints_job ON fine_tuning_checkpoints (job_id, seq)")
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


def m011_synth_jobs(conn: Connection) -> None:
    """Synthetic-data jobs and their passages (``/v1/ember/synth_jobs``)."""
    conn.execute(
        text(
            """
            CREATE TABLE synth_jobs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                status TEXT NOT NULL,
                job TEXT NOT NULL
            )
            """
        )
    )
    conn.execute(
        text(
            """
            CREATE TABLE synth_passages (
                job_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                text TEXT NOT NULL,
                pairs TEXT,
                PRIMARY KEY (job_id, idx)
            )
            """
        )
    )


def m012_owners(conn: Connection) -> None:
    """Who owns each file, vector store, stored response, fine-tuning and synthetic-data
    job: the tenant (the API key's name) that created it, or NULL for the operator. A
    tenant sees only its own (``Caller.may_see``); rows from before keys existed are the
    operator's."""
    for table in ("files", "vector_stores", "responses", "fine_tuning_jobs", "synth_jobs"):
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN owner TEXT"))
        conn.execute(text(f"CREATE INDEX {table}_owner ON {table} (owner)"))


def m013_conversations(conn: Connection) -> None:
    """``/v1/conversations``: a row per conversation and a row per item, in order; and
    the status of background responses."""
    conn.execute(
        text(
            """
            CREATE TABLE conversations (
                id TEXT PRIMARY KEY,
                created_at INTEGER NOT NULL,
                metadata TEXT NOT NULL
            )
            """
        )
    )
    conn.execute(
        text(
            """
            CREATE TABLE conversation_items (
                conversation_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                id TEXT NOT NULL,
                item TEXT NOT NULL,
                PRIMARY KEY (conversation_id, seq)
            )
            """
        )
    )
    conn.execute(
        text("CREATE INDEX conversation_items_id ON conversation_items (conversation_id, id)")
    )
    # Background responses (``background: true``) and their status: see store/background.py.
    conn.execute(
        text("CREATE TABLE background_responses (id TEXT PRIMARY KEY, status TEXT NOT NULL)")
    )


MIGRATIONS: list[Callable[[Connection], None]] = [
    m001_initial,
    m002_audit_log,
    m003_files,
    m003b_vector_stores,
    m004_keys_usage,
    m005_fine_tuning,
    m006_guard_vault,
    m011_synth_jobs,
    m012_owners,
    m013_conversations,
]


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
