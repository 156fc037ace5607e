"""Loaded models, kept in an LRU bounded by a memory budget.

``ModelManager.get(spec)`` returns a loaded engine, loading it (in a worker thread) on first
use; when the loaded engines together exceed ``settings.model_memory_budget_mb`` the least
recently used ones that are not busy are unloaded. ``unload`` frees a model at once. Two
requests for the same unloaded model share one load.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ember.engines.base import BatchStats, Engine, TextEngine, engine_factory
from ember.engines.engine_process import LoopReader, load_isolated
from ember.errors import EmberError, ModelLoadError
from ember.models.spec import ModelSpec
from ember.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    spec: ModelSpec
    engine: Engine
    loaded_at: float
    last_used: float
    load_seconds: float


class ModelManager:
    """Owns every loaded engine in the process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._loading: dict[str, asyncio.Future[LoadedModel]] = {}
        self._lock = asyncio.Lock()
        self.restarts: dict[str, int] = {}  # engines started again after their process died

    @property
    def budget_bytes(self) -> int:
        return self.settings.model_memory_budget_mb * 1024 * 1024

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    def batch_stats(self) -> list[tuple[str, BatchStats]]:
        """The scheduler state of every loaded batching engine, by model id."""
        found = []
        for entry in list(self._loaded.values()):
            stats = entry.engine.batch_stats() if isinstance(entry.engine, TextEngine) else None
            if stats is not None:
                found.append((entry.spec.id, stats))
        return found

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self._loaded

    async def get(self, spec: ModelSpec) -> Engine:
        """The engine serving ``spec``, loading it if needed."""
        async with self._lock:
            entry = self._loaded.get(spec.id)
            if entry is not None and not entry.engine.alive:
                # Its process died (a native crash): start it again for this request.
                logger.warning("restarting the engine of %s after a crash", spec.id)
                self._drop(spec.id)
                self.restarts[spec.id] = self.restarts.get(spec.id, 0) + 1
                entry = None
            if entry is not None:
                entry.last_used = time.time()
                self._loaded.move_to_end(spec.id)
                return entry.engine
            future = self._loading.get(spec.id)
            owner = future is None
            if future is None:
                future = asyncio.get_running_loop().create_future()
                self._loading[spec.id] = future
        if not owner:
            return (await asyncio.shield(future)).engine
        try:
            reader = (asyncio.get_running_loop(), threading.get_ident())
            entry = await asyncio.to_thread(self._load, spec, reader)
        except BaseException as exc:
            async with self._lock:
                self._loading.pop(spec.id, None)
            future.set_exception(exc)
            future.exception()  # mark retrieved: the waiters re-raise it themselves
            raise
        async with self._lock:
            self._loading.pop(spec.id, None)
            self._loaded[spec.id] = entry
            self._evict_over_budget(keep=spec.id)
        future.set_result(entry)
        return entry.engine

    def _load(self, spec: ModelSpec, reader: LoopReader = None) -> LoadedModel:
        started = time.perf_counter()
        factory = engine_factory(spec.engine)  # an unknown engine fails here, before a process
        try:
            if self.settings.engine_isolation:
                engine = load_isolated(spec, self.settings, reader)
            else:
                engine = factory(spec, self.settings)
        except EmberError:
            raise
        except Exception as exc:  # a foreign library failed: translate, keep the cause
            raise ModelLoadError(
                f"The model '{spec.id}' could not be loaded by the {spec.engine} engine "
                f"({type(exc).__name__})."
            ) from exc
        elapsed = time.perf_counter() - started
        logger.info("loaded %s (%s) in %.1f s", spec.id, spec.engine, elapsed)
        now = time.time()
        return LoadedModel(spec, engine, now, now, elapsed)

    def _evict_over_budget(self, keep: str) -> None:
        total = sum(entry.engine.memory_bytes for entry in self._loaded.values())
        for model_id in list(self._loaded):
            if total <= self.budget_bytes:
                break
            entry = self._loaded[model_id]
            if model_id == keep or entry.engine.busy:
                continue
            total -= entry.engine.memory_bytes
            self._drop(model_id)
            logger.info("evicted %s to stay within the memory budget", model_id)

    def _drop(self, model_id: str) -> None:
        entry = self._loaded.pop(model_id)
        entry.engine.close()
        del entry
        gc.collect()

    async def unload(self, model_id: str) -> bool:
        """Free a loaded model; waits for its running generation to end."""
        async with self._lock:
            entry = self._loaded.get(model_id)
            if entry is None:
                return False
        await asyncio.to_thread(entry.engine.lock.acquire)
        try:
            async with self._lock:
                if model_id in self._loaded:
                    self._drop(model_id)
        finally:
            entry.engine.lock.release()
        return True

    async def close(self) -> None:
        for model_id in list(self._loaded):
            await self.unload(model_id)
