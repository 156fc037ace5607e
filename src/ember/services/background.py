"""Background responses (``background: true``): the agent loop as a job of the server.

:meth:`BackgroundResponses.start` stores the response ``queued`` and runs it in a task;
``GET /v1/responses/{id}`` reads what the store holds (``in_progress`` until the loop
ends, then the finished response, which the loop stores itself);
:meth:`BackgroundResponses.cancel` stops the task and stores it ``cancelled``. A server that
stops with background responses running fails them when it starts again
(:meth:`BackgroundResponses.recover`): a poller sees ``failed`` with a ``server_error``, never
an ``in_progress`` that lasts for ever. Among replicas sharing a database, each response is
leased to the replica running it (``ember.services.leases``): a starting replica fails only
the responses no live replica holds, and every sweep fails those of a replica that died and
stops the local ones that another replica cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ember.core.request_context import ANONYMOUS, Caller
from ember.errors import EmberError, InvalidRequestError
from ember.services.leases import LeaseKeeper
from ember.services.responses import Item, PreparedResponse, ResponseService
from ember.store import Store
from ember.store.background import UNFINISHED
from ember.store.database import StoredResponse

logger = logging.getLogger(__name__)

LEASE_KIND = "background"


class BackgroundResponses:
    def __init__(
        self, responses: ResponseService, store: Store, leases: LeaseKeeper | None = None
    ) -> None:
        self.responses = responses
        self.store = store
        self.leases = leases
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    def start(self, prepared: PreparedResponse) -> Item:
        """Store the response ``queued``, start its loop, and return it."""
        if not prepared.request.store:
            raise InvalidRequestError(
                "A background response must be stored; leave out store: false.", param="store"
            )
        body = self.responses.response_object(prepared, [], status="queued")
        self._save(prepared, body)
        self.store.background.set(prepared.id, "queued")
        if self.leases is not None:
            self.leases.claim(LEASE_KIND, prepared.id)
        task = asyncio.get_running_loop().create_task(self._drive(prepared))
        self._tasks[prepared.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(prepared.id, None))
        return body

    async def _drive(self, prepared: PreparedResponse) -> None:
        status = "failed"
        try:
            self.store.background.set(prepared.id, "in_progress")
            self._save(prepared, self.responses.response_object(prepared, [], status="in_progress"))
            async for event in self.responses.run(prepared):  # the loop stores the result
                if hasattr(event, "response") and event.response.get("status") not in (
                    "in_progress",
                    "queued",
                ):
                    status = event.response["status"]
        except asyncio.CancelledError:
            if self._closing:
                status = "failed"
                self._save(prepared, self.responses.response_object(prepared, [], status="queued"))
                self._fail(prepared.id, "The server stopped while this response was running.")
            else:
                status = "cancelled"
                body = self.responses.response_object(prepared, [], status="cancelled")
                self._save(prepared, body)
            raise
        except Exception as exc:
            if not isinstance(exc, EmberError):
                logger.exception("background response %s failed", prepared.id)
            message = exc.message if isinstance(exc, EmberError) else "The server failed."
            self._fail(prepared.id, message)
        finally:
            self.store.background.set(prepared.id, status)
            if self.leases is not None:
                self.leases.release(LEASE_KIND, prepared.id)

    async def cancel(self, response_id: str, *, caller: Caller = ANONYMOUS) -> Item:
        """Stop a background response of ``caller``'s (another tenant's is a 404)."""
        stored = self.responses.stored(response_id, caller=caller)
        if not stored.response.get("background"):
            raise InvalidRequestError(
                "Only background responses can be cancelled.", param="response_id"
            )
        task = self._tasks.get(response_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elif self.store.background.status(response_id) in UNFINISHED:
            self._fail(response_id, "cancelled")
        found = self.store.get_response(response_id)
        assert found is not None
        return found.response

    def watch(self) -> None:
        """At every lease sweep: recover, and stop what another replica cancelled."""
        if self.leases is not None:
            self.leases.on_sweep(self._sweep)

    def _sweep(self) -> None:
        self.recover()
        for response_id, task in list(self._tasks.items()):
            if self.store.background.status(response_id) == "cancelled":
                task.cancel()

    def recover(self) -> list[str]:
        """Fail the background responses left unfinished by a server that stopped (a
        previous run of this one, or a replica that died)."""
        ids = []
        for response_id in self.store.background.unfinished():
            if response_id in self._tasks:
                continue
            if self.leases is not None and not self.leases.claim(LEASE_KIND, response_id):
                continue  # a live replica runs it
            ids.append(response_id)
            self._fail(
                response_id,
                "The server stopped while this background response was running; create it again.",
            )
            if self.leases is not None:
                self.leases.release(LEASE_KIND, response_id)
        return ids

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def _fail(self, response_id: str, message: str) -> None:
        stored = self.store.get_response(response_id)
        if stored is None:
            return
        body = dict(stored.response)
        if message == "cancelled":
            body.update(status="cancelled")
        else:
            body.update(status="failed", error={"code": "server_error", "message": message})
        body["completed_at"] = None
        self.store.save_response(
            StoredResponse(
                id=stored.id,
                model=stored.model,
                created_at=stored.created_at,
                previous_response_id=stored.previous_response_id,
                conversation=stored.conversation,
                response=body,
                owner=stored.owner,
            )
        )
        self.store.background.set(response_id, body["status"])

    def _save(self, prepared: PreparedResponse, body: Item) -> None:
        self.store.save_response(
            StoredResponse(
                id=prepared.id,
                model=body["model"],
                created_at=prepared.created_at,
                previous_response_id=prepared.request.previous_response_id,
                conversation=prepared.conversation,
                response=body,
                owner=prepared.caller.owner,
            )
        )
