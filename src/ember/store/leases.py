"""Leases on background work, so that replicas sharing a database never run a job twice.

``job_leases`` has a row per piece of background work that some process has claimed: its
kind (``fine_tuning``, ``ingestion``, ``synth``), its key (a job id, or a vector store and
file), who holds it (a replica id) and until when. A replica claims work before it starts
it and renews every lease it holds well inside their lifetime; a replica that dies (SIGKILL,
a lost machine) stops renewing, its leases expire, and another replica claims the work and
resumes it from what the database and the checkpoints hold.

A claim is one conditional statement (insert, or take over a row that is expired or already
ours), atomic on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import Engine, text


class LeaseTables:
    """Reads and writes of ``job_leases`` (reached as ``Store.leases``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, kind: str, key: str, holder: str, *, ttl_s: float, now: float) -> bool:
        """Take the lease on (kind, key) for ``holder`` unless another holds an unexpired
        one; True when ``holder`` holds it now."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                text(
                    "INSERT INTO job_leases (kind, key, holder, expires_at)"
                    " VALUES (:kind, :key, :holder, :until)"
                    " ON CONFLICT (kind, key) DO UPDATE SET holder = excluded.holder,"
                    " expires_at = excluded.expires_at"
                    " WHERE job_leases.holder = excluded.holder OR job_leases.expires_at < :now"
                    " RETURNING holder"
                ),
                {"kind": kind, "key": key, "holder": holder, "until": now + ttl_s, "now": now},
            ).first()
        return taken is not None

    def renew(self, holder: str, *, ttl_s: float, now: float) -> int:
        """Extend every lease ``holder`` holds; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                text("UPDATE job_leases SET expires_at = :until WHERE holder = :holder"),
                {"until": now + ttl_s, "holder": holder},
            )
            return int(result.rowcount or 0)

    def release(self, kind: str, key: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM job_leases WHERE kind = :kind AND key = :key AND holder = :holder"
                ),
                {"kind": kind, "key": key, "holder": holder},
            )

    def holder(self, kind: str, key: str, *, now: float) -> str | None:
        """Who holds an unexpired lease on (kind, key), if anyone."""
        with self.engine.begin() as conn:
            return conn.execute(
                text(
                    "SELECT holder FROM job_leases WHERE kind = :kind AND key = :key"
                    " AND expires_at >= :now"
                ),
                {"kind": kind, "key": key, "now": now},
            ).scalar()
