"""The stage that makes a request wait for its records' commit (``log_synchronous_commit``).

The request-log row and the audit link are queued for the store's log writer
(``ember.store.writer``) by their stages. This stage comes first, so its ``on_complete``
runs last: it waits (off the event loop's hands: other requests are served meanwhile) until
everything queued so far, this request's rows included, is committed. Without it a request
answers as soon as its rows are queued.
"""

from __future__ import annotations

import asyncio

from ember.core.request_context import OutputFilter, RequestContext
from ember.store import Store


class CommitStage:
    """Waits, at the very end of a request, for its queued records to be committed."""

    name = "commit"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def on_request(self, ctx: RequestContext) -> None:
        return None

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        return None

    async def on_complete(self, ctx: RequestContext) -> None:
        # Shielded: a client that disconnects stops the wait, never the write.
        await asyncio.shield(asyncio.wrap_future(self.store.writer.submit()))
