"""Persistence: SQLAlchemy tables, migrations and the :class:`Store` facade."""

from ember.store.database import ModelRecord, Store, StoredResponse

__all__ = ["ModelRecord", "Store", "StoredResponse"]
