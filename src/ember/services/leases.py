"""This replica's leases on background work (see ``ember.store.leases``).

Fine-tuning, ingestion, synthetic-data jobs and background responses claim a lease before
they run a piece of work and release it when it ends. :class:`LeaseKeeper` renews every
lease this replica holds a few times per lifetime and, as often, calls the sweeps the job
services registered: each looks for work whose lease has lapsed (its replica died) and
takes it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ember.store import Store

logger = logging.getLogger(__name__)


def default_replica_id(home: Path) -> str:
    """A name for this server that no other replica shares and that it keeps across restarts:
    the host and its home (replicas have homes of their own). A server restarted after a
    crash so finds its own leases and resumes its jobs at once, without waiting them out."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}-{digest}"


class LeaseKeeper:
    def __init__(
        self,
        store: Store,
        replica_id: str,
        *,
        ttl_s: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.replica_id = replica_id
        self.ttl_s = ttl_s
        self.clock = clock
        self._sweeps: list[Callable[[], object]] = []
        self._task: asyncio.Task[None] | None = None

    def claim(self, kind: str, key: str) -> bool:
        """Take the lease on (kind, key) unless another live replica holds it."""
        return self.store.leases.claim(
            kind, key, self.replica_id, ttl_s=self.ttl_s, now=self.clock()
        )

    def release(self, kind: str, key: str) -> None:
        self.store.leases.release(kind, key, self.replica_id)

    def on_sweep(self, sweep: Callable[[], object]) -> None:
        """Call ``sweep`` (in the event loop) at every renewal: a job service looks there
        for work that another replica left when it died."""
        self._sweeps.append(sweep)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await asyncio.to_thread(
                    self.store.leases.renew, self.replica_id, ttl_s=self.ttl_s, now=self.clock()
                )
                for sweep in self._sweeps:
                    sweep()
            except asyncio.CancelledError:
                raise
            except SQLAlchemyError as exc:  # locked or away for a while: again next time
                logger.warning("could not renew this replica's leases: %s", str(exc).split("\n")[0])
            except Exception:
                logger.exception("a lease sweep failed")
