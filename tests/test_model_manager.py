"""Loaded models live in an LRU bounded by a memory budget; unload frees them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ember.engines.manager import ModelManager
from ember.models.embedded import E5_ID, SMOLLM2_ID, embedded_models
from ember.settings import Settings


def spec(model_id: str):  # type: ignore[no-untyped-def]
    return next(s for s in embedded_models() if s.id == model_id)


def test_lru_evicts_past_the_budget_and_unload_frees(tmp_path: Path) -> None:
    async def scenario() -> None:
        # SmolLM2 with a 2k context is ~146 MB, e5 ~72 MB: 160 MB holds one of them, not both.
        settings = Settings(
            home=tmp_path, model_memory_budget_mb=160, context_length=2048, n_threads=2
        )
        manager = ModelManager(settings)
        small = await manager.get(spec(SMOLLM2_ID))
        assert manager.is_loaded(SMOLLM2_ID)
        assert small.memory_bytes < manager.budget_bytes
        again = await manager.get(spec(SMOLLM2_ID))
        assert again is small  # cached, not reloaded
        await manager.get(spec(E5_ID))
        assert manager.is_loaded(E5_ID)
        assert not manager.is_loaded(SMOLLM2_ID)  # least recently used, evicted
        assert sum(entry.engine.memory_bytes for entry in manager.loaded()) <= manager.budget_bytes
        assert await manager.unload(E5_ID)
        assert not manager.is_loaded(E5_ID)
        assert not await manager.unload(E5_ID)
        await manager.close()
        assert manager.loaded() == []

    asyncio.run(scenario())


def test_concurrent_requests_share_one_load(tmp_path: Path) -> None:
    async def scenario() -> None:
        manager = ModelManager(Settings(home=tmp_path, context_length=2048, n_threads=2))
        first, second = await asyncio.gather(
            manager.get(spec(SMOLLM2_ID)), manager.get(spec(SMOLLM2_ID))
        )
        assert first is second
        assert len(manager.loaded()) == 1
        await manager.close()

    asyncio.run(scenario())
