"""Builds every service once, from the settings; the app and the CLI share this wiring."""

from __future__ import annotations

from dataclasses import dataclass

from ember.engines.manager import ModelManager
from ember.guard.analyzer import Analyzer
from ember.guard.injection.registry import InjectionScanner
from ember.guard.moderation import LexiconModeration, ModerationModel
from ember.guard.vault_store import VaultStore, load_or_create_key
from ember.models.registry import ModelRegistry
from ember.services.audit import AuditStage
from ember.services.embeddings import EmbeddingService
from ember.services.guard_stage import GuardStage
from ember.services.metrics import Metrics
from ember.services.pipeline import Pipeline, RequestStage, UsageStage
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
    analyzer: Analyzer
    injection: InjectionScanner
    moderation: ModerationModel

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings.home.mkdir(parents=True, exist_ok=True)
        store = Store(settings.database_path)
        registry = ModelRegistry(settings, store)
        manager = ModelManager(settings)
        metrics = Metrics()
        stages: list[RequestStage] = []
        if settings.audit_enabled:  # first, so it sees the input as sent and completes last
            stages.append(AuditStage(store, raw_text=settings.audit_raw_text))
        analyzer = Analyzer(enabled=settings.guard_recognizers)
        injection = InjectionScanner()
        moderation = LexiconModeration()
        vaults = (
            VaultStore(store.engine, load_or_create_key(settings.home), settings.guard_vault_ttl_s)
            if settings.guard_vault_ttl_s > 0
            else None
        )
        stages.append(GuardStage(settings, analyzer, injection, moderation, vaults))
        stages.append(UsageStage(store, metrics))
        pipeline = Pipeline(stages)
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
            analyzer=analyzer,
            injection=injection,
            moderation=moderation,
        )

    async def close(self) -> None:
        await self.manager.close()
        self.store.close()
