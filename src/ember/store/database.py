"""Ember's store: the only owner of the database.

One SQLite file (``$EMBER_HOME/ember.db``) in WAL mode by default, or a PostgreSQL database
with pgvector, reached through SQLAlchemy 2 from the same code. Callers use :class:`Store`'s
methods; nobody else opens a session or writes SQL.

Schema (see ``ember.store.migrations`` for how it got there):

* ``models``: models added with ``ember models pull``: where their files are, which engine
  serves them, and the hub's checksums. Embedded models are not rows: they come from
  installed packages and are found afresh at every start.
* ``responses``: stored ``/v1/responses`` objects (``store: true``), with the conversation
  items that led to them so that ``previous_response_id`` can continue a conversation.
* ``request_log``: one row per inference request (endpoint, model, tokens, latency, status);
  later usage accounting builds on it. Its rows, like the audit log's links, are written by
  ``ember.store.writer`` (one thread, group commit) off the event loop.
* ``api_keys``: API keys (name, salted hash, allowed models, guard policy, budgets, rate
  limits); ``ember.store.keys`` reads and writes them. ``request_log`` also carries each
  request's tenant (key name), route target, cost, cache hit and route reason (usage).
* ``usage_daily``: the request log summed by UTC day, tenant, model and target, written with
  it, so that usage reports stay fast on a big log (``ember.store.usage``).
* ``fine_tuning_jobs``, ``fine_tuning_events``, ``fine_tuning_checkpoints``: fine-tuning
  jobs, what happened to them, and where their checkpoints are (``ember.store.fine_tuning``).
* ``audit_log``: the tamper-evident hash chain of requests; ``ember.store.audit`` explains
  the chain and owns its reading, writing and checking.
* ``files``: uploaded files' metadata (``/v1/files``); ``ember.store.files`` owns it, the
  bytes live under ``$EMBER_HOME/files/``.
* ``vector_stores``, ``vector_store_files``, ``vector_store_file_batches``: the stores and
  the ingestion journal; ``ember.store.vectors`` owns them (``Store.vectors``).
* ``chunks`` and the ``chunk_vectors_<dim>`` tables (sqlite-vec or pgvector):
  ``ember.store.chunks`` owns them (``Store.chunks``).
* ``key_reservations``: what each key has reserved and spent, the rows behind budgets and
  rate limits (``ember.store.ledger``, ``Store.ledger``).
* ``job_leases``: which replica runs which background job, until when
  (``ember.store.leases``, ``Store.leases``).

The same schema lives in PostgreSQL when ``database_url`` names one: several replicas then
share it (``ember.store.migrations`` explains how the schema is written for both).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlean
import sqlite_vec
from sqlalchemy import Engine, create_engine, event, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker

from ember.store import audit, fine_tuning, keys, usage
from ember.store import files as files_table
from ember.store.audit import AuditEntry, AuditRecord, AuditVerification
from ember.store.background import BackgroundTable
from ember.store.chunks import ChunkTables
from ember.store.conversations import ConversationTables
from ember.store.files import FileRecord
from ember.store.leases import LeaseTables
from ember.store.ledger import LedgerTables
from ember.store.migrations import MIGRATIONS, migrate
from ember.store.synth import SynthJobTables
from ember.store.tables import ApiKeyRow, ModelRow, RequestLogRow, ResponseRow
from ember.store.vectors import VectorTables
from ember.store.writer import LogWriter


@dataclass
class ModelRecord:
    """A model downloaded from a hub and registered in the store."""

    id: str
    engine: str
    kind: str
    path: str
    source: str
    revision: str = "main"
    files: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int = 0
    gguf_file: str | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))


@dataclass
class StoredResponse:
    id: str
    model: str
    created_at: int
    previous_response_id: str | None
    conversation: list[dict[str, Any]]
    response: dict[str, Any]
    owner: str | None = None  # the tenant that created it; None: the operator


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # sqlite-vec (vector search for ``ember.ground``) is an extension: load it into every
    # connection. The stdlib sqlite3 may be built without extension loading; sqlean is not.
    dbapi_connection.enable_load_extension(True)
    sqlite_vec.load(dbapi_connection)
    dbapi_connection.enable_load_extension(False)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def database_url(url_or_path: str | Path) -> str:
    """The SQLAlchemy URL of a database given as a path (SQLite) or a URL.

    ``postgresql://`` and ``postgres://`` mean psycopg 3, the driver Ember installs.
    """
    url = str(url_or_path)
    if "://" not in url:
        return f"sqlite:///{Path(url)}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_store_engine(url_or_path: str | Path) -> Engine:
    """A SQLAlchemy engine for Ember's database: SQLite (a file) or PostgreSQL."""
    url = make_url(database_url(url_or_path))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # sqlean is sqlite3 with extension loading compiled in (see _set_sqlite_pragmas).
        engine = create_engine(url, module=sqlean.dbapi2)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            f"unsupported database {url.get_backend_name()!r}: use a SQLite file path or a"
            " postgresql:// URL"
        )
    # pre_ping: a connection the database dropped (a restart, a failover) is replaced
    # before use instead of failing the request that drew it.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Store:
    """All reads and writes of Ember's database."""

    def __init__(self, url_or_path: str | Path) -> None:
        self.engine: Engine = create_store_engine(url_or_path)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.chunks = ChunkTables(self.engine)
        self.vectors = VectorTables(self.engine, self.chunks)
        self.synth = SynthJobTables(self.engine)
        self.conversations = ConversationTables(self.engine)
        self.background = BackgroundTable(self.engine)
        self.ledger = LedgerTables(self.engine)
        self.leases = LeaseTables(self.engine)
        # Request-log rows and audit links: written by one thread, a batch per transaction.
        self.writer = LogWriter(self.session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def pending_migrations(self) -> list[str]:
        """Migrations the code has and the database has not applied (another replica of a
        newer version may be migrating it); raises when the database cannot be reached."""
        with self.engine.connect() as conn:
            applied = set(conn.execute(text("SELECT name FROM _migrations")).scalars())
        return [m.__name__ for m in MIGRATIONS if m.__name__ not in applied]

    def close(self) -> None:
        self.writer.close()  # commits every queued request record first
        self.chunks.close()
        self.engine.dispose()

    # -- models ---------------------------------------------------------------------------

    def add_model(self, record: ModelRecord) -> None:
        """Insert or replace a downloaded model's record."""
        with self.session() as session:
            session.merge(
                ModelRow(
                    id=record.id,
                    engine=record.engine,
                    kind=record.kind,
                    path=record.path,
                    source=record.source,
                    revision=record.revision,
                    files=json.dumps(record.files),
                    size_bytes=record.size_bytes,
                    gguf_file=record.gguf_file,
                    created_at=record.created_at,
                )
            )

    def get_model(self, model_id: str) -> ModelRecord | None:
        with self.session() as session:
            row = session.get(ModelRow, model_id)
            return _model_record(row) if row else None

    def list_models(self) -> list[ModelRecord]:
        with self.session() as session:
            rows = session.scalars(select(ModelRow).order_by(ModelRow.created_at)).all()
            return [_model_record(row) for row in rows]

    def remove_model(self, model_id: str) -> bool:
        with self.session() as session:
            row = session.get(ModelRow, model_id)
            if row is None:
                return False
            session.delete(row)
            return True

    # -- responses ------------------------------------------------------------------------

    def save_response(self, stored: StoredResponse) -> None:
        with self.session() as session:
            session.merge(
                ResponseRow(
                    id=stored.id,
                    model=stored.model,
                    created_at=stored.created_at,
                    previous_response_id=stored.previous_response_id,
                    conversation=json.dumps(stored.conversation, ensure_ascii=False),
                    response=json.dumps(stored.response, ensure_ascii=False),
                    owner=stored.owner,
                )
            )

    def get_response(self, response_id: str) -> StoredResponse | None:
        with self.session() as session:
            row = session.get(ResponseRow, response_id)
            if row is None:
                return None
            return StoredResponse(
                id=row.id,
                model=row.model,
                created_at=row.created_at,
                previous_response_id=row.previous_response_id,
                conversation=json.loads(row.conversation),
                response=json.loads(row.response),
                owner=row.owner,
            )

    def delete_response(self, response_id: str) -> bool:
        with self.session() as session:
            row = session.get(ResponseRow, response_id)
            if row is None:
                return False
            session.delete(row)
            return True

    # -- request log ----------------------------------------------------------------------

    def log_request(
        self,
        *,
        endpoint: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: float,
        status: str,
        tenant: str | None = None,
        target: str | None = None,
        cost_usd: float = 0.0,
        cache_hit: bool = False,
        route_reason: str | None = None,
    ) -> Future[None]:
        """Queue one request's row for the log writer; the future is done once committed."""
        row = {
            "created_at": time.time(),
            "endpoint": endpoint,
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "latency_ms": latency_ms,
            "status": status,
            "tenant": tenant,
            "target": target,
            "cost_usd": cost_usd,
            "cache_hit": int(cache_hit),
            "route_reason": route_reason,
        }
        return self.writer.submit(request_log=row)

    def count_requests(self, *, model: str | None = None) -> int:
        self.writer.flush()
        with self.session() as session:
            query = select(RequestLogRow.id)
            if model is not None:
                query = query.where(RequestLogRow.model == model)
            return len(session.scalars(query).all())

    # -- API keys and usage (ember.store.keys) -------------------------------------------

    def add_key(self, record: keys.KeyRecord) -> None:
        with self.session() as session:
            session.add(keys.to_row(record))

    def get_key(self, key_id: str) -> keys.KeyRecord | None:
        with self.session() as session:
            row = session.get(ApiKeyRow, key_id)
            return keys.from_row(row) if row else None

    def find_key(self, name_or_id: str) -> keys.KeyRecord | None:
        with self.session() as session:
            row = (
                session.get(ApiKeyRow, name_or_id)
                or session.scalars(select(ApiKeyRow).where(ApiKeyRow.name == name_or_id)).first()
            )
            return keys.from_row(row) if row else None

    def list_keys(self, *, include_revoked: bool = True) -> list[keys.KeyRecord]:
        with self.session() as session:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at)
            if not include_revoked:
                query = query.where(ApiKeyRow.revoked_at.is_(None))
            return [keys.from_row(row) for row in session.scalars(query).all()]

    def revoke_key(self, key_id: str) -> bool:
        with self.session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = time.time()
            return True

    def update_key(self, key_id: str, changes: dict[str, Any]) -> keys.KeyRecord | None:
        """Change an active key's models, policy or limits (``None`` clears one); the
        updated record, or None when no active key has that id."""
        with self.session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return None
            for name, value in keys.to_columns(changes).items():
                setattr(row, name, value)
            session.flush()
            return keys.from_row(row)

    def recount_spending(self, tenant: str) -> None:
        """Rebuild ``tenant``'s ledger rows from the request log (``LedgerTables.recount``),
        after every request-log row queued in this process is written."""
        self.writer.flush()
        self.ledger.recount(tenant, time.time())

    def count_active_keys(self) -> int:
        with self.session() as session:
            return len(
                session.scalars(select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None))).all()
            )

    def usage_report(
        self,
        group_by: list[usage.UsageGroup],
        *,
        since: float | None = None,
        tenant: str | None = None,
        raw: bool = False,
    ) -> list[usage.UsageRow]:
        """Usage since ``since`` grouped by ``group_by`` (``ember.store.usage``); ``raw``:
        summed from the request log alone, not from ``usage_daily``."""
        self.writer.flush()
        report = usage.usage_report_raw if raw else usage.usage_report
        with self.session() as session:
            rows = report(session, group_by, since=since, tenant=tenant)
        return sorted(rows, key=lambda row: [row.group[name] for name in group_by])

    # -- audit log ------------------------------------------------------------------------

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        """Chain one record onto the audit log, atomically, now."""
        self.writer.flush()  # after the links queued before it
        with self.session() as session:
            return audit.append(session, entry)

    def queue_audit(self, entry: AuditEntry) -> Future[None]:
        """Queue one record for the log writer; the future is done once it is chained."""
        return self.writer.submit(audit=entry)

    def iter_audit(
        self, *, after_seq: int | None = None, limit: int | None = None
    ) -> Iterator[AuditRecord]:
        self.writer.flush()
        return audit.iter_records(self.session, after_seq=after_seq, limit=limit)

    def tail_audit(self, count: int) -> list[AuditRecord]:
        self.writer.flush()
        with self.session() as session:
            return audit.tail(session, count)

    def verify_audit(self) -> AuditVerification:
        return audit.verify(self.iter_audit())

    # -- files ----------------------------------------------------------------------------

    def add_file(self, record: FileRecord) -> None:
        with self.session() as session:
            files_table.add(session, record)

    def get_file(self, file_id: str) -> FileRecord | None:
        with self.session() as session:
            return files_table.get(session, file_id)

    def list_files(
        self,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        owner: str | None = None,
    ) -> tuple[list[FileRecord], bool]:
        with self.session() as session:
            return files_table.page(
                session, purpose=purpose, limit=limit, order=order, after=after, owner=owner
            )

    def remove_file(self, file_id: str) -> bool:
        with self.session() as session:
            return files_table.remove(session, file_id)

    def expired_files(self, now: int) -> list[str]:
        with self.session() as session:
            return files_table.expired(session, now)

    def files_by_sha256(self, sha256: str) -> list[FileRecord]:
        with self.session() as session:
            return files_table.by_sha256(session, sha256)

    # -- fine-tuning ----------------------------------------------------------------------
    # ``fine_tuning`` is the table module; each call is one transaction.

    def add_fine_tuning_job(self, record: fine_tuning.JobRecord) -> None:
        with self.session() as session:
            fine_tuning.add_job(session, record)

    def get_fine_tuning_job(self, job_id: str) -> fine_tuning.JobRecord | None:
        with self.session() as session:
            return fine_tuning.get_job(session, job_id)

    def update_fine_tuning_job(self, job_id: str, **changes: Any) -> fine_tuning.JobRecord | None:
        with self.session() as session:
            return fine_tuning.update_job(session, job_id, **changes)

    def list_fine_tuning_jobs(
        self, *, after: str | None = None, limit: int = 20, owner: str | None = None
    ) -> tuple[list[fine_tuning.JobRecord], bool]:
        with self.session() as session:
            return fine_tuning.page_jobs(session, after=after, limit=limit, owner=owner)

    def fine_tuning_jobs_in(self, statuses: list[str]) -> list[fine_tuning.JobRecord]:
        with self.session() as session:
            return fine_tuning.jobs_in(session, statuses)

    def fine_tuned_models(self) -> list[fine_tuning.JobRecord]:
        with self.session() as session:
            return fine_tuning.fine_tuned_models(session)

    def add_fine_tuning_event(self, job_id: str, message: str, **fields: Any) -> None:
        with self.session() as session:
            fine_tuning.add_event(session, job_id, int(time.time()), message, **fields)

    def list_fine_tuning_events(
        self, job_id: str, *, after: str | None = None, limit: int = 20
    ) -> tuple[list[fine_tuning.EventRecord], bool]:
        with self.session() as session:
            return fine_tuning.page_events(session, job_id, after=after, limit=limit)

    def add_fine_tuning_checkpoint(
        self, job_id: str, step: int, path: str, metrics: dict[str, Any]
    ) -> None:
        with self.session() as session:
            fine_tuning.add_checkpoint(session, job_id, int(time.time()), step, path, metrics)

    def forget_fine_tuning_checkpoints(self, job_id: str, keep_paths: Sequence[str]) -> int:
        with self.session() as session:
            return fine_tuning.forget_checkpoints(session, job_id, keep_paths)

    def list_fine_tuning_checkpoints(
        self, job_id: str, *, after: str | None = None, limit: int = 10
    ) -> tuple[list[fine_tuning.CheckpointRecord], bool]:
        with self.session() as session:
            return fine_tuning.page_checkpoints(session, job_id, after=after, limit=limit)


def _model_record(row: ModelRow) -> ModelRecord:
    return ModelRecord(
        id=row.id,
        engine=row.engine,
        kind=row.kind,
        path=row.path,
        source=row.source,
        revision=row.revision,
        files=json.loads(row.files),
        size_bytes=row.size_bytes,
        gguf_file=row.gguf_file,
        created_at=row.created_at,
    )
