"""Builds every service once, from the settings; the app and the CLI share this wiring."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ember.act.mcp_servers import McpServers
from ember.engines.manager import ModelManager
from ember.ground.answer import CheckPolicy
from ember.ground.retrieval import Retriever
from ember.guard.analyzer import Analyzer
from ember.guard.injection.registry import InjectionScanner
from ember.guard.moderation import LexiconModeration, ModerationModel
from ember.guard.vault_store import VaultStore, load_or_create_key
from ember.models.registry import ModelRegistry
from ember.route.cache import ResponseCache
from ember.route.keys import KeyRing
from ember.route.limits import Ledger
from ember.route.router import Router
from ember.services.agent import AgentToolbox
from ember.services.audit import AuditStage
from ember.services.background import BackgroundResponses
from ember.services.cache_replay import CacheStage
from ember.services.commit import CommitStage
from ember.services.conversations import ConversationLog
from ember.services.embedder import Embedder, load_embedder
from ember.services.embeddings import EmbeddingService
from ember.services.files import FileService
from ember.services.fine_tuning import FineTuningService
from ember.services.grounding import GroundingService
from ember.services.guard_stage import GuardStage
from ember.services.ingestion import IngestionWorker, Ingestor
from ember.services.key_stage import KeyStage
from ember.services.leases import LeaseKeeper, default_replica_id
from ember.services.metrics import Metrics
from ember.services.model_pulls import ModelPullService
from ember.services.pipeline import Pipeline, RequestStage, UsageStage
from ember.services.planner import Planner
from ember.services.responses import ResponseService
from ember.services.synth_jobs import SynthJobService
from ember.services.text_generation import TextGenerationService
from ember.services.tool_guard import ToolGuard
from ember.services.vector_stores import VectorStoreService
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
    files: FileService
    ingestion: IngestionWorker
    vector_stores: VectorStoreService
    grounding: GroundingService
    router: Router
    ledger: Ledger
    cache: ResponseCache
    keys: KeyRing
    fine_tuning: FineTuningService
    synth: SynthJobService
    toolbox: AgentToolbox
    conversations: ConversationLog
    background: BackgroundResponses
    leases: LeaseKeeper
    pulls: ModelPullService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings.home.mkdir(parents=True, exist_ok=True)
        store = Store(settings.database)
        registry = ModelRegistry(settings, store)
        manager = ModelManager(settings)
        replica_id = settings.replica_id or default_replica_id(settings.home)
        # Replicas (a shared database, or a name given) label every sample with their id.
        replicated = settings.replica_id is not None or settings.database_url is not None
        metrics = Metrics(replica_id if replicated else None)
        metrics.watch_batches(manager.batch_stats)
        stages: list[RequestStage] = []
        if settings.log_synchronous_commit:  # completes after every stage: waits for the commit
            stages.append(CommitStage(store))
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
        router = Router(settings)
        metrics.watch_targets(router.status)
        ledger = Ledger(store)
        cache = ResponseCache(ttl_s=settings.cache.ttl_s, max_entries=settings.cache.max_entries)
        stages.append(KeyStage(settings, ledger, router))  # before the guard: per-key policy
        stages.append(GuardStage(settings, analyzer, injection, moderation, vaults))
        stages.append(CacheStage(cache))
        stages.append(UsageStage(store, metrics))
        pipeline = Pipeline(stages)
        planner = Planner(settings, registry, manager, pipeline, router, cache)
        text = TextGenerationService(planner, pipeline)
        files = FileService(store, settings.files_dir, max_bytes=settings.max_file_bytes)

        async def embedder() -> Embedder:
            return await load_embedder(registry, manager, "default-embedding")

        leases = LeaseKeeper(store, replica_id, ttl_s=settings.lease_ttl_s)
        ingestion = IngestionWorker(Ingestor(store.vectors, store.chunks, files), embedder, leases)
        vector_stores = VectorStoreService(
            store.vectors,
            files,
            ingestion,
            Retriever(store.chunks, vector_index=settings.ground_vector_index),
            embedder,
            auto_chunking=(settings.ground_chunk_tokens, settings.ground_chunk_overlap_tokens),
        )
        toolbox = AgentToolbox(
            McpServers(settings.mcp, settings.mcp_server_urls),
            ToolGuard(settings, analyzer, injection, store),
            vector_stores.retrieve,
            check_store=lambda store_id, caller: vector_stores.get(store_id, caller=caller),
        )
        conversations = ConversationLog(store.conversations)
        responses = ResponseService(
            text,
            store,
            producer=settings.aigc_producer,
            toolbox=toolbox,
            max_steps=settings.max_tool_steps,
            conversations=conversations,
        )
        background = BackgroundResponses(responses, store, leases)
        return cls(
            settings=settings,
            store=store,
            registry=registry,
            manager=manager,
            pipeline=pipeline,
            metrics=metrics,
            text=text,
            embeddings=EmbeddingService(registry, manager, pipeline),
            responses=responses,
            analyzer=analyzer,
            injection=injection,
            moderation=moderation,
            files=files,
            ingestion=ingestion,
            vector_stores=vector_stores,
            grounding=GroundingService(
                vector_stores,
                text,
                injection,
                min_score=settings.ground_min_score,
                max_sources=settings.ground_max_sources,
                policy=CheckPolicy(
                    min_groundedness=settings.ground_min_groundedness,
                    min_question_coverage=settings.ground_min_question_coverage,
                    coverage_window=settings.ground_coverage_window,
                    self_check=settings.ground_self_check,
                    self_check_threshold=settings.ground_self_check_threshold,
                    judge_model=settings.ground_judge_model,
                ),
            ),
            router=router,
            ledger=ledger,
            cache=cache,
            keys=KeyRing(store, settings),
            fine_tuning=FineTuningService(settings, store, registry, files, leases),
            synth=SynthJobService(
                store.synth,
                registry,
                text,
                files,
                vector_stores,
                producer=settings.aigc_producer,
                leases=leases,
            ),
            toolbox=toolbox,
            conversations=conversations,
            background=background,
            leases=leases,
            pulls=ModelPullService(settings, store),
        )

    async def close(self) -> None:
        await self.leases.stop()
        await self.background.close()
        await self.toolbox.close()
        await self.synth.stop()
        await asyncio.to_thread(self.pulls.close)
        await self.fine_tuning.close()
        await self.ingestion.stop()
        await self.router.close()
        await self.manager.close()
        self.store.close()
