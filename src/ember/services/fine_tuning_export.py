"""Exporting a finished job's model: the peft adapter, merged safetensors, or a GGUF.

Each export reports the validation perplexity of what was written next to that of the
fine-tuned model as the job measured it, so whatever a conversion costs is visible. A GGUF
export is scored by llama.cpp itself and registered as a model (``<fine-tuned id>:gguf``)
that the llama.cpp engine serves.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ember.adapt.gguf_export import GgufType, write_llama_gguf
from ember.adapt.perplexity import gguf_perplexity, perplexity
from ember.adapt.worker import prepare
from ember.errors import ConflictError
from ember.services.files import FileService
from ember.settings import Settings
from ember.store import ModelRecord, Store
from ember.store.fine_tuning import JobRecord

ExportFormat = Literal["adapter", "merged", "gguf"]


@dataclass(frozen=True)
class ExportResult:
    format: ExportFormat
    path: Path
    model_id: str | None  # registered for serving (GGUF), else None
    perplexity_fine_tuned: float | None  # validation, as the job measured it
    perplexity_exported: float | None  # validation, of the written files


def export_job(
    settings: Settings,
    store: Store,
    job_id: str,
    fmt: ExportFormat,
    output: Path | None = None,
    *,
    gguf_type: GgufType = "f16",
) -> ExportResult:
    job = store.get_fine_tuning_job(job_id)
    if job is None or job.status != "succeeded" or not job.fine_tuned_model:
        status = job.status if job else "missing"
        raise ConflictError(
            f"The job '{job_id}' is {status}; only a succeeded job can be exported.",
            param="fine_tuning_job_id",
        )
    target = output or Path(job.internal["workdir"]) / "export" / fmt
    fine_tuned = job.job["ember"]["perplexity"].get("after", {}).get("validation")
    if fmt == "adapter":
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(job.internal["adapter"], target)
        return ExportResult(fmt, target, None, fine_tuned, fine_tuned)

    model, tokenizer = _merged(job, settings)
    files = FileService(store, settings.files_dir, max_bytes=settings.max_file_bytes)
    validation = prepare(job, tokenizer, files).validation_blocks
    if fmt == "merged":
        model.save_pretrained(str(target))
        tokenizer.save_pretrained(str(target))
        reloaded = _reload(target)
        exported = perplexity(reloaded, validation, pad_id=_pad_id(tokenizer))
        return ExportResult(fmt, target, None, fine_tuned, exported)

    base = job.internal["base"]
    base_gguf = Path(base["path"]) / base["gguf_file"] if base.get("gguf_file") else None
    path = write_llama_gguf(
        model,
        tokenizer,
        target / f"model-{gguf_type}.gguf",
        base_gguf=base_gguf,
        dtype=gguf_type,
        name=job.fine_tuned_model,
    )
    exported = gguf_perplexity(path, validation, n_threads=settings.fine_tuning_threads)
    model_id = f"{job.fine_tuned_model}:gguf"
    store.add_model(
        ModelRecord(
            id=model_id,
            engine="llamacpp",
            kind="chat",
            path=str(path),
            source=f"fine-tune/{job.id}",
            revision=gguf_type,
            size_bytes=path.stat().st_size,
        )
    )
    return ExportResult(fmt, path, model_id, fine_tuned, exported)


def _merged(job: JobRecord, settings: Settings) -> tuple[Any, Any]:
    from ember.engines.transformers_engine import load_pretrained
    from ember.models.registry import spec_from_fine_tuning_job

    return load_pretrained(spec_from_fine_tuning_job(job), settings)


def _reload(path: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)


def _pad_id(tokenizer: Any) -> int:
    return int(
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
