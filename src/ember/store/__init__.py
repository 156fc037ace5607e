"""Persistence: SQLAlchemy tables, migrations and the :class:`Store` facade."""

from ember.store.audit import AuditEntry, AuditRecord, AuditVerification
from ember.store.database import (
    ModelRecord,
    Store,
    StoredResponse,
    create_store_engine,
    database_url,
)
from ember.store.files import FileRecord

__all__ = [
    "AuditEntry",
    "AuditRecord",
    "AuditVerification",
    "FileRecord",
    "ModelRecord",
    "Store",
    "StoredResponse",
    "create_store_engine",
    "database_url",
]
