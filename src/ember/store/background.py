"""Which stored responses run in the background (``background: true``), and their state.

A row per background response, its ``status`` kept beside the stored response so that a
server that starts again finds the ones it was running when it stopped (``unfinished``)
and fails them cleanly instead of leaving them ``in_progress`` for ever.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

UNFINISHED = ("queued", "in_progress")


class BackgroundTable:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def set(self, response_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO background_responses (id, status) VALUES (:id, :status) "
                    "ON CONFLICT (id) DO UPDATE SET status = excluded.status"
                ),
                {"id": response_id, "status": status},
            )

    def status(self, response_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT status FROM background_responses WHERE id = :id"),
                {"id": response_id},
            ).first()
        return str(row[0]) if row else None

    def unfinished(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id FROM background_responses WHERE status IN ('queued', 'in_progress')"
                )
            ).all()
        return [str(row[0]) for row in rows]
