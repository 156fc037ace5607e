"""SQLAlchemy table definitions (the current schema; migrations build it)."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    engine: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    path: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    revision: Mapped[str] = mapped_column(String)
    files: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer)
    gguf_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(Integer)


class ResponseRow(Base):
    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    model: Mapped[str] = mapped_column(String)
    created_at: Mapped[int] = mapped_column(Integer)
    previous_response_id: Mapped[str | None] = mapped_column(String, nullable=True)
    conversation: Mapped[str] = mapped_column(Text)
    response: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String, nullable=True)  # the tenant; None: operator


class RequestLogRow(Base):
    __tablename__ = "request_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[float] = mapped_column(Float)
    endpoint: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String)
    tenant: Mapped[str | None] = mapped_column(String, nullable=True)
    target: Mapped[str | None] = mapped_column(String, nullable=True)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cache_hit: Mapped[int] = mapped_column(Integer, default=0)  # 0 or 1, as stored
    route_reason: Mapped[str | None] = mapped_column(String, nullable=True)


class UsageDailyRow(Base):
    """The request log summed by UTC day, tenant, model and target (``ember.store.usage``)."""

    __tablename__ = "usage_daily"

    day: Mapped[str] = mapped_column(String, primary_key=True)  # YYYY-MM-DD, UTC
    tenant: Mapped[str] = mapped_column(String, primary_key=True)  # '': no key
    model: Mapped[str] = mapped_column(String, primary_key=True)
    target: Mapped[str] = mapped_column(String, primary_key=True)  # '': not routed
    requests: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(Float)
    cache_hits: Mapped[int] = mapped_column(Integer)
    refusals: Mapped[int] = mapped_column(Integer)
    latency_ms_sum: Mapped[float] = mapped_column(Float)


class AuditLogRow(Base):
    """One link of the audit chain; ``ember.store.audit`` owns how it is written and checked."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[float] = mapped_column(Float)
    request_id: Mapped[str] = mapped_column(String)
    tenant: Mapped[str | None] = mapped_column(String, nullable=True)
    endpoint: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    route: Mapped[str | None] = mapped_column(String, nullable=True)
    status: Mapped[str] = mapped_column(String)
    verdicts: Mapped[str] = mapped_column(Text)
    input_sha256: Mapped[str] = mapped_column(String)
    output_sha256: Mapped[str] = mapped_column(String)
    input_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    output_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String)
    hash: Mapped[str] = mapped_column(String)


class FileRow(Base):
    """An uploaded file's metadata; ``seq`` orders listings and pages (``after``)."""

    __tablename__ = "files"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String, unique=True)
    filename: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String)
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner: Mapped[str | None] = mapped_column(String, nullable=True)  # the tenant; None: operator


class ApiKeyRow(Base):
    """An API key: only a salted SHA-256 of its secret is kept (``ember.route.keys``)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    salt: Mapped[str] = mapped_column(String)
    hash: Mapped[str] = mapped_column(String)
    models: Mapped[str | None] = mapped_column(Text, nullable=True)
    policy: Mapped[str | None] = mapped_column(String, nullable=True)
    budget_usd_day: Mapped[float | None] = mapped_column(Float, nullable=True)
    budget_usd_month: Mapped[float | None] = mapped_column(Float, nullable=True)
    budget_tokens_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    budget_tokens_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class FineTuningJobRow(Base):
    """A fine-tuning job: ``job`` is its OpenAI object, ``internal`` what the worker needs."""

    __tablename__ = "fine_tuning_jobs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String, unique=True)
    created_at: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String)
    requested: Mapped[str | None] = mapped_column(String, nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(String, nullable=True)
    job: Mapped[str] = mapped_column(Text)
    internal: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String, nullable=True)  # the tenant; None: operator


class FineTuningEventRow(Base):
    __tablename__ = "fine_tuning_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String)
    created_at: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String)
    type: Mapped[str] = mapped_column(String)
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text, nullable=True)


class FineTuningCheckpointRow(Base):
    __tablename__ = "fine_tuning_checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String)
    created_at: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[str] = mapped_column(Text)
