"""The synthetic-data job tables: a row per job, a row per passage.

A job row keeps the public ``ember.synth_job`` object as JSON (``job``) with its ``status``
as a column. Each passage the job will read is stored when the job is created, with the
pairs the model wrote for it once it is done (``pairs``, NULL until then): the passage and
the job's progress change in one transaction, so a server killed mid-job resumes at the
first passage without pairs and never asks twice or loses an answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, text

UNFINISHED = ("queued", "running")


class SynthJobTables:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, job: dict[str, Any], passages: Sequence[str], owner: str | None = None
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO synth_jobs (id, created_at, status, job, owner) "
                    "VALUES (:id, :created_at, :status, :job, :owner)"
                ),
                {
                    "owner": owner,
                    "id": job["id"],
                    "created_at": job["created_at"],
                    "status": job["status"],
                    "job": json.dumps(job),
                },
            )
            conn.execute(
                text(
                    "INSERT INTO synth_passages (job_id, idx, text) VALUES (:job_id, :idx, :text)"
                ),
                [{"job_id": job["id"], "idx": i, "text": p} for i, p in enumerate(passages)],
            )

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT job FROM synth_jobs WHERE id = :id"), {"id": job_id}
            ).first()
        return None if row is None else dict(json.loads(row[0]))

    def owner(self, job_id: str) -> str | None:
        """The tenant that created the job (None: the operator)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT owner FROM synth_jobs WHERE id = :id"), {"id": job_id}
            ).first()
        return None if row is None else row[0]

    def page(
        self, *, after: str | None, limit: int, owner: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Jobs newest first, after the job ``after`` (a cursor, as OpenAI lists page);
        ``owner``: that tenant's only (None: every job)."""
        query = "SELECT job FROM synth_jobs WHERE 1 = 1"
        params: dict[str, Any] = {"limit": limit + 1, "owner": owner}
        if owner is not None:
            query += " AND owner = :owner"
        if after is not None:
            query += " AND seq < (SELECT seq FROM synth_jobs WHERE id = :after)"
            params["after"] = after
        query += " ORDER BY seq DESC LIMIT :limit"
        with self.engine.connect() as conn:
            rows = conn.execute(text(query), params).all()
        return [json.loads(r[0]) for r in rows[:limit]], len(rows) > limit

    def update(
        self, job_id: str, changes: dict[str, Any], *, only_if_status: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """Merge ``changes`` into the job; None if it is missing or not in ``only_if_status``."""
        with self.engine.begin() as conn:
            row = conn.execute(
                text("SELECT job FROM synth_jobs WHERE id = :id"), {"id": job_id}
            ).first()
            if row is None:
                return None
            job = dict(json.loads(row[0]))
            if only_if_status and job["status"] not in only_if_status:
                return None
            job.update(changes)
            conn.execute(
                text("UPDATE synth_jobs SET status = :status, job = :job WHERE id = :id"),
                {"id": job_id, "status": job["status"], "job": json.dumps(job)},
            )
        return job

    def pending_passages(self, job_id: str) -> list[tuple[int, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT idx, text FROM synth_passages "
                    "WHERE job_id = :id AND pairs IS NULL ORDER BY idx"
                ),
                {"id": job_id},
            ).all()
        return [(int(r[0]), str(r[1])) for r in rows]

    def record_pairs(
        self, job_id: str, idx: int, pairs: list[dict[str, str]], progress: dict[str, Any]
    ) -> bool:
        """Store one passage's pairs and the job's progress together; False if cancelled."""
        with self.engine.begin() as conn:
            row = conn.execute(
                text("SELECT job FROM synth_jobs WHERE id = :id"), {"id": job_id}
            ).first()
            if row is None:
                return False
            job = dict(json.loads(row[0]))
            if job["status"] != "running":
                return False
            conn.execute(
                text("UPDATE synth_passages SET pairs = :pairs WHERE job_id = :id AND idx = :idx"),
                {"id": job_id, "idx": idx, "pairs": json.dumps(pairs, ensure_ascii=False)},
            )
            job.update(progress)
            conn.execute(
                text("UPDATE synth_jobs SET job = :job WHERE id = :id"),
                {"id": job_id, "job": json.dumps(job)},
            )
        return True

    def all_pairs(self, job_id: str) -> list[tuple[str, list[dict[str, str]]]]:
        """Each done passage's text and pairs, in passage order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT text, pairs FROM synth_passages "
                    "WHERE job_id = :id AND pairs IS NOT NULL ORDER BY idx"
                ),
                {"id": job_id},
            ).all()
        return [(str(r[0]), json.loads(r[1])) for r in rows]

    def unfinished(self) -> list[str]:
        """Queued or running jobs, oldest first (to resume after a restart)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id FROM synth_jobs WHERE status IN ('queued', 'running') ORDER BY seq")
            ).all()
        return [str(r[0]) for r in rows]
