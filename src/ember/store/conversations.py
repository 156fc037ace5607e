"""The conversation tables (``/v1/conversations``): a row per conversation, a row per item.

A conversation row keeps its ``metadata`` (JSON), creation time and ``owner`` (the tenant
that created it, NULL for the operator); its items keep their wire shape (JSON) in the order
they were added (``seq``), each under its own ``id``. A deleted conversation takes its items
with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text


@dataclass(frozen=True)
class ConversationRecord:
    created_at: int
    metadata: dict[str, str]
    owner: str | None  # the tenant that created it; None: the operator


class ConversationTables:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        conversation_id: str,
        created_at: int,
        metadata: dict[str, str],
        *,
        owner: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO conversations (id, created_at, metadata, owner) "
                    "VALUES (:id, :created_at, :metadata, :owner)"
                ),
                {
                    "id": conversation_id,
                    "created_at": created_at,
                    "metadata": json.dumps(metadata),
                    "owner": owner,
                },
            )

    def get(self, conversation_id: str) -> ConversationRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT created_at, metadata, owner FROM conversations WHERE id = :id"),
                {"id": conversation_id},
            ).first()
        if row is None:
            return None
        return ConversationRecord(int(row[0]), json.loads(row[1]), row[2])

    def page(
        self, *, limit: int, after: str | None = None, owner: str | None = None
    ) -> tuple[list[tuple[str, ConversationRecord]], bool]:
        """One page of conversations, newest first (ties by id), after the conversation
        ``after``; of tenant ``owner`` only when given (None: every tenant's)."""
        where, params = ("1 = 1", {}) if owner is None else ("owner = :owner", {"owner": owner})
        with self.engine.connect() as conn:
            if after is not None:
                cursor = conn.execute(
                    text(f"SELECT created_at FROM conversations WHERE {where} AND id = :after"),
                    {**params, "after": after},
                ).scalar()
                if cursor is None:
                    return [], False
                where += " AND (created_at < :at OR (created_at = :at AND id < :after))"
                params = {**params, "at": cursor, "after": after}
            rows = conn.execute(
                text(
                    f"SELECT id, created_at, metadata, owner FROM conversations WHERE {where} "
                    "ORDER BY created_at DESC, id DESC LIMIT :limit"
                ),
                {**params, "limit": limit + 1},
            ).all()
        found = [
            (str(row[0]), ConversationRecord(int(row[1]), json.loads(row[2]), row[3]))
            for row in rows[:limit]
        ]
        return found, len(rows) > limit

    def set_metadata(self, conversation_id: str, metadata: dict[str, str]) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                text("UPDATE conversations SET metadata = :metadata WHERE id = :id"),
                {"id": conversation_id, "metadata": json.dumps(metadata)},
            )
        return bool(done.rowcount)

    def delete(self, conversation_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM conversation_items WHERE conversation_id = :id"),
                {"id": conversation_id},
            )
            done = conn.execute(
                text("DELETE FROM conversations WHERE id = :id"), {"id": conversation_id}
            )
        return bool(done.rowcount)

    def add_items(self, conversation_id: str, items: Sequence[dict[str, Any]]) -> None:
        """Append ``items`` (each with an ``id``) after the conversation's last one."""
        if not items:
            return
        with self.engine.begin() as conn:
            last = conn.execute(
                text(
                    "SELECT COALESCE(MAX(seq), -1) FROM conversation_items "
                    "WHERE conversation_id = :id"
                ),
                {"id": conversation_id},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO conversation_items (conversation_id, seq, id, item) "
                    "VALUES (:conversation_id, :seq, :id, :item)"
                ),
                [
                    {
                        "conversation_id": conversation_id,
                        "seq": int(last) + 1 + offset,
                        "id": item["id"],
                        "item": json.dumps(item, ensure_ascii=False),
                    }
                    for offset, item in enumerate(items)
                ],
            )

    def items(self, conversation_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT item FROM conversation_items WHERE conversation_id = :id ORDER BY seq"
                ),
                {"id": conversation_id},
            ).all()
        return [json.loads(row[0]) for row in rows]

    def delete_item(self, conversation_id: str, item_id: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                text(
                    "DELETE FROM conversation_items "
                    "WHERE conversation_id = :conversation_id AND id = :id"
                ),
                {"conversation_id": conversation_id, "id": item_id},
            )
        return bool(done.rowcount)
