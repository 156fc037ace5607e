"""Persistence: SQLAlchemy tables, migrations and the :class:`Store` facade."""

from ember.store.audit import AuditEntry, AuditRecord, AuditVerification
from ember.store.database import ModelRecord, Store, StoredResponse

__all__ = [
    "AuditEntry",
    "AuditRecord",
    "AuditVerification",
    "ModelRecord",
    "Store",
    "StoredResponse",
]
