"""``/v1/conversations``: conversations and their items, kept in the store.

A conversation is an ordered list of items in their Responses wire shape (messages, function
calls and outputs, MCP items). ``POST /v1/responses`` with ``conversation`` reads them as the
response's input history and appends the response's input and output items to it
(:meth:`ConversationLog.append`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any, Literal

from ember.core.request_context import ANONYMOUS, Caller
from ember.errors import InvalidRequestError, NotFoundError
from ember.store.conversations import ConversationTables

Item = dict[str, Any]
MAX_ITEMS_PER_ADD = 20


class ConversationLog:
    """Conversations are their tenant's: a method that takes an id takes the ``Caller``
    too, and another tenant's conversation is the 404 of a missing one."""

    def __init__(self, tables: ConversationTables) -> None:
        self.tables = tables

    def create(
        self, metadata: dict[str, str], items: Sequence[Item], *, caller: Caller = ANONYMOUS
    ) -> Item:
        if len(items) > MAX_ITEMS_PER_ADD:
            raise InvalidRequestError(
                f"At most {MAX_ITEMS_PER_ADD} items can be added at once.", param="items"
            )
        conversation_id = f"conv_{secrets.token_hex(24)}"
        created_at = int(time.time())
        self.tables.create(conversation_id, created_at, metadata, owner=caller.owner)
        self.tables.add_items(conversation_id, items)
        return _conversation(conversation_id, created_at, metadata)

    def get(
        self,
        conversation_id: str,
        *,
        caller: Caller = ANONYMOUS,
        param: str = "conversation_id",
    ) -> Item:
        found = self.tables.get(conversation_id)
        if found is None or not caller.may_see(found.owner):
            raise _not_found(conversation_id, param)
        return _conversation(conversation_id, found.created_at, found.metadata)

    def list_conversations(
        self, *, limit: int = 20, after: str | None = None, caller: Caller = ANONYMOUS
    ) -> Item:
        """``GET /v1/ember/conversations``: the caller's conversations, newest first (the
        operator's list holds every tenant's, as its other lists do)."""
        found, more = self.tables.page(limit=limit, after=after, owner=caller.owner)
        data = [_conversation(cid, record.created_at, record.metadata) for cid, record in found]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }

    def update(
        self, conversation_id: str, metadata: dict[str, str], *, caller: Caller = ANONYMOUS
    ) -> Item:
        self.get(conversation_id, caller=caller)
        if not self.tables.set_metadata(conversation_id, metadata):
            raise _not_found(conversation_id, "conversation_id")
        return self.get(conversation_id, caller=caller)

    def delete(self, conversation_id: str, *, caller: Caller = ANONYMOUS) -> Item:
        self.get(conversation_id, caller=caller)
        if not self.tables.delete(conversation_id):
            raise _not_found(conversation_id, "conversation_id")
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    def items_of(self, conversation_id: str, *, caller: Caller = ANONYMOUS) -> list[Item]:
        """Every item, oldest first (the history a response continues)."""
        self.get(conversation_id, caller=caller, param="conversation")
        return self.tables.items(conversation_id)

    def append(self, conversation_id: str, items: Sequence[Item]) -> None:
        """Append a response's items (its request checked the conversation's owner)."""
        self.tables.add_items(conversation_id, items)

    def add_items(
        self, conversation_id: str, items: Sequence[Item], *, caller: Caller = ANONYMOUS
    ) -> Item:
        self.get(conversation_id, caller=caller)
        if len(items) > MAX_ITEMS_PER_ADD:
            raise InvalidRequestError(
                f"At most {MAX_ITEMS_PER_ADD} items can be added at once.", param="items"
            )
        self.tables.add_items(conversation_id, items)
        return _page(list(items), limit=len(items) or 1)

    def list_items(
        self,
        conversation_id: str,
        *,
        limit: int = 20,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        caller: Caller = ANONYMOUS,
    ) -> Item:
        items = self.items_of_checked(conversation_id, caller=caller)
        return item_page(items, limit=limit, order=order, after=after)

    def item(self, conversation_id: str, item_id: str, *, caller: Caller = ANONYMOUS) -> Item:
        for item in self.items_of_checked(conversation_id, caller=caller):
            if item.get("id") == item_id:
                return item
        raise NotFoundError(f"No item found with id '{item_id}'.", param="item_id")

    def delete_item(
        self, conversation_id: str, item_id: str, *, caller: Caller = ANONYMOUS
    ) -> Item:
        conversation = self.get(conversation_id, caller=caller)
        if not self.tables.delete_item(conversation_id, item_id):
            raise NotFoundError(f"No item found with id '{item_id}'.", param="item_id")
        return conversation

    def items_of_checked(self, conversation_id: str, *, caller: Caller = ANONYMOUS) -> list[Item]:
        self.get(conversation_id, caller=caller)
        return self.tables.items(conversation_id)


def _conversation(conversation_id: str, created_at: int, metadata: dict[str, str]) -> Item:
    return {
        "id": conversation_id,
        "object": "conversation",
        "created_at": created_at,
        "metadata": metadata,
    }


def item_page(
    items: Sequence[Item], *, limit: int, order: Literal["asc", "desc"], after: str | None
) -> Item:
    """One page (a ``list`` object) of ``items`` in ``order``, after the item ``after``: a
    conversation's items, or the input items of a response."""
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [item.get("id") for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    return _page(ordered, limit=limit)


def _page(items: list[Item], *, limit: int) -> Item:
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def _not_found(conversation_id: str, param: str) -> NotFoundError:
    return NotFoundError(f"No conversation found with id '{conversation_id}'.", param=param)
