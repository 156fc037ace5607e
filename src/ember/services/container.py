"""Builds every service once, from the settings; the app and the CLI share this wiring."""

from __future__ import annotations

from dataclasses import dataclass

from ember.engines.manager import ModelManager
from ember.models.registry import ModelRegistry
from ember.services.embeddings import EmbeddingService
from ember.services.metrics import Metrics
from ember.services.pipeline import Pipeline, UsageStage
from ember.services.responses import ResponseService
from ember.services.text_generation import TextGenerationService
from ember.settings import Settings
from ember.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    registry: ModelRegistry
    manager: ModelManager
    pipeline: Pipeline
    metrics: Metrics
    text: TextGenerationService
    embeddings: EmbeddingService
    responses: ResponseService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings.home.mkdir(parents=True, exist_ok=True)
        store = Store(settings.database_path)
        registry = ModelRegistry(settings, store)
        manager = ModelManager(settings)
        metrics = Metrics()
        pipeline = Pipeline([UsageStage(store, metrics)])
        text = TextGenerationService(registry, manager, pipeline)
        return cls(
            settings=settings,
            store=store,
            registry=registry,
            manager=manager,
            pipeline=pipeline,
            metrics=metrics,
            text=text,
            embeddings=EmbeddingService(registry, manager, pipeline),
            responses=ResponseService(text, store),
        )

    async def close(self) -> None:
        await self.manager.close()
        self.store.close()
