"""The fine-tuning worker process: ``python -m ember.adapt.worker JOB_ID``.

It trains one job and writes everything it does to the store (status, events, checkpoints),
so the server, the CLI and a later worker all see the same state. Started again after a
crash or a pause it resumes from the job's last checkpoint; perplexities measured before
training are kept in the job, not measured again. It checks the job's ``requested`` column
after every step (pause, cancel) and checkpoints and exits on SIGTERM (server shutdown),
leaving the job ``running`` so that the next server resumes it.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from ember.adapt.data import (
    Block,
    Conversation,
    DataSummary,
    pack,
    parse_jsonl,
    split_validation,
    tokenize_conversation,
    tokenize_text,
)
from ember.adapt.general_text import GENERAL_TEXT
from ember.adapt.perplexity import perplexity
from ember.adapt.training import (
    LoraSettings,
    LoraTrainer,
    Outcome,
    StepReport,
    TrainingConfig,
    add_lora,
    checkpoint_dirs,
    pick_device,
    seed_everything,
)
from ember.errors import EmberError
from ember.settings import Settings, load_settings
from ember.store import Store
from ember.store.fine_tuning import JobRecord

logger = logging.getLogger("ember.adapt.worker")


class FileReader(Protocol):
    """Where the job's training and validation files are read (``services.files``)."""

    def read(self, file_id: str) -> bytes: ...


def fine_tuned_model_name(base: str, suffix: str | None, job_id: str) -> str:
    """The registry name of a finished job's model: ``ft:<base>:<suffix>:<id>``."""
    return f"ft:{base}:{suffix or ''}:{job_id.removeprefix('ftjob-')}"


@dataclass
class JobObserver:
    """Turns training progress into job events, checkpoints rows and ETA; asks the store
    whether the job was paused or cancelled."""

    store: Store
    job_id: str
    terminated: bool = False
    recent: list[float] = field(default_factory=list)

    def on_step(self, report: StepReport) -> None:
        self.recent = [*self.recent, report.seconds][-20:]
        per_step = sum(self.recent) / len(self.recent)
        eta = int(time.time() + per_step * (report.total_steps - report.step))
        self.store.add_fine_tuning_event(
            self.job_id,
            f"Step {report.step}/{report.total_steps}: training loss={report.loss:.4f}",
            type="metrics",
            data={
                "step": report.step,
                "total_steps": report.total_steps,
                "epoch": report.epoch,
                "train_loss": report.loss,
                "learning_rate": report.learning_rate,
                "tokens_per_second": report.tokens / max(report.seconds, 1e-9),
                "step_seconds": report.seconds,
                "estimated_finish": eta,
            },
        )
        self.store.update_fine_tuning_job(
            self.job_id,
            job={"estimated_finish": eta, "trained_tokens": report.tokens_seen},
        )

    def on_checkpoint(self, step: int, path: Path, report: StepReport) -> None:
        self.store.add_fine_tuning_checkpoint(
            self.job_id,
            step,
            str(path),
            {"step": step, "train_loss": report.loss, "learning_rate": report.learning_rate},
        )
        # The trainer keeps only its newest checkpoints on disk; list only those.
        kept = [str(p) for p in checkpoint_dirs(path.parent.parent)]
        self.store.forget_fine_tuning_checkpoints(self.job_id, kept)
        self.store.add_fine_tuning_event(self.job_id, f"Checkpoint written at step {step}")

    def interruption(self) -> Outcome | None:
        if self.terminated:
            return "paused"
        job = self.store.get_fine_tuning_job(self.job_id)
        if job is None or job.requested == "cancel":
            return "cancelled"
        if job.requested == "pause":
            return "paused"
        return None


def run(job_id: str, settings: Settings) -> int:
    import torch

    torch.set_num_threads(settings.fine_tuning_threads)
    store = Store(settings.database_path)
    job = store.get_fine_tuning_job(job_id)
    if job is None or job.status not in ("queued", "running"):
        return 0
    store.update_fine_tuning_job(job_id, status="running", worker_pid=os.getpid())
    store.add_fine_tuning_event(job_id, "Training worker started")
    try:
        _train(job, settings, store)
    except Exception as exc:
        logger.exception("fine-tuning job %s failed", job_id)
        message = exc.message if isinstance(exc, EmberError) else type(exc).__name__
        store.update_fine_tuning_job(
            job_id,
            status="failed",
            worker_pid=None,
            only_if_status=("running",),
            job={
                "finished_at": int(time.time()),
                "estimated_finish": None,
                "error": {"code": "training_failed", "message": message, "param": None},
            },
        )
        store.add_fine_tuning_event(job_id, f"Job failed: {message}", level="error")
        return 1
    finally:
        store.close()
    return 0


@dataclass(frozen=True)
class PreparedData:
    train: list[Block]
    validation: list[Block]
    general: list[Block]
    summary: DataSummary


def prepare(job: JobRecord, tokenizer: Any, files: FileReader) -> PreparedData:
    """Parse, split, tokenize and pack the job's data (the same way on every resume)."""
    ember = job.job["ember"]
    seed = int(job.job["seed"])
    seq_len = int(ember["seq_len"])
    training = parse_jsonl(files.read(job.job["training_file"]))
    training.raise_for_problems("training_file")
    conversations: list[Conversation] = training.conversations
    if job.job["validation_file"]:
        validation_data = parse_jsonl(files.read(job.job["validation_file"]))
        validation_data.raise_for_problems("validation_file")
        held_out = validation_data.conversations
    else:
        conversations, held_out = split_validation(
            conversations, float(ember["validation_fraction"]), seed
        )
    examples = [tokenize_conversation(tokenizer, c) for c in conversations]
    eos = tokenizer.eos_token_id
    train = pack(examples, seq_len, eos)
    validation = pack([tokenize_conversation(tokenizer, c) for c in held_out], seq_len, eos)
    general = pack([tokenize_text(tokenizer, GENERAL_TEXT)], seq_len, None)
    config = training_config(job, settings_checkpoint=int(ember["checkpoint_every"]))
    summary = DataSummary(
        examples=len(examples),
        tokens=sum(len(e.input_ids) for e in examples),
        trained_tokens=sum(e.trained_tokens for e in examples),
        blocks=len(train),
        steps_per_epoch=config.steps_per_epoch(len(train)),
        total_steps=config.total_steps(len(train)),
        formats=training.formats,
    )
    return PreparedData(train, validation, general, summary)


def training_config(job: JobRecord, *, settings_checkpoint: int) -> TrainingConfig:
    hyper = job.job["hyperparameters"]
    ember = job.job["ember"]
    lora = ember["lora"]
    return TrainingConfig(
        n_epochs=int(hyper["n_epochs"]),
        batch_size=int(hyper["batch_size"]),
        learning_rate=float(ember["learning_rate"]),
        seed=int(job.job["seed"]),
        checkpoint_every=settings_checkpoint,
        max_steps=ember.get("max_steps"),
        lora=LoraSettings(
            rank=int(lora["rank"]),
            alpha=int(lora["alpha"]),
            dropout=float(lora["dropout"]),
            target_modules=tuple(lora["target_modules"]),
        ),
    )


def _load_base(job: JobRecord, settings: Settings) -> tuple[Any, Any]:
    from ember.engines.transformers_engine import load_pretrained
    from ember.models.spec import ModelSpec

    base = job.internal["base"]
    spec = ModelSpec(
        id=job.job["model"],
        engine="transformers",
        kind="chat",
        source="config",
        path=Path(base["path"]),
        gguf_file=base.get("gguf_file"),
    )
    model, tokenizer = load_pretrained(spec, settings)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _describe(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"the CPU ({torch.get_num_threads()} threads)"


def _train(job: JobRecord, settings: Settings, store: Store) -> None:
    # The worker process composes what it needs, as ``ember serve`` does: the file service
    # is the one owner of uploaded files' bytes.
    from ember.services.files import FileService

    files = FileService(store, settings.files_dir, max_bytes=settings.max_file_bytes)
    workdir = Path(job.internal["workdir"])
    model, tokenizer = _load_base(job, settings)
    device = pick_device(settings.fine_tuning_device)
    model.to(device)
    store.add_fine_tuning_event(job.id, f"Training on {_describe(device)}")
    data = prepare(job, tokenizer, files)
    config = training_config(job, settings_checkpoint=int(job.job["ember"]["checkpoint_every"]))
    resuming = bool(checkpoint_dirs(workdir))
    pad_id = int(tokenizer.pad_token_id)
    if not resuming:
        summary = data.summary
        store.update_fine_tuning_job(
            job.id,
            job={"ember": {**job.job["ember"], "data_summary": summary.__dict__}},
        )
        store.add_fine_tuning_event(
            job.id,
            f"Data: {summary.examples} training examples, {summary.tokens} tokens "
            f"({summary.trained_tokens} trained on), {summary.blocks} packed blocks, "
            f"{summary.total_steps} steps",
            data=dict(summary.__dict__),
        )
        started = time.perf_counter()
        before = {
            "validation": perplexity(model, data.validation, pad_id=pad_id),
            "general": perplexity(model, data.general, pad_id=pad_id),
        }
        _record_perplexity(store, job.id, "before", before)
        _estimate(store, job.id, summary, data, time.perf_counter() - started)
    seed_everything(config.seed)
    model = add_lora(model, config.lora)
    observer = JobObserver(store, job.id)
    signal.signal(signal.SIGTERM, lambda _s, _f: _terminate(observer, _s, _f))
    trainer = LoraTrainer(model, data.train, config, workdir, pad_id=pad_id, observer=observer)
    resumed_at = trainer.resume_from_latest()
    if resumed_at is not None:
        store.add_fine_tuning_event(job.id, f"Resumed from the checkpoint at step {resumed_at}")
    outcome = trainer.train()
    if outcome != "succeeded":
        if outcome == "paused" and not observer.terminated:
            store.update_fine_tuning_job(job.id, worker_pid=None, job={"estimated_finish": None})
            store.add_fine_tuning_event(job.id, f"Paused at step {trainer.step}")
        return
    trainer.save_adapter(Path(job.internal["adapter"]))
    after = {
        "validation": perplexity(trainer.model, data.validation, pad_id=pad_id),
        "general": perplexity(trainer.model, data.general, pad_id=pad_id),
    }
    _record_perplexity(store, job.id, "after", after)
    name = fine_tuned_model_name(job.job["model"], job.internal.get("suffix"), job.id)
    store.update_fine_tuning_job(
        job.id,
        status="succeeded",
        requested=None,
        worker_pid=None,
        fine_tuned_model=name,
        only_if_status=("running", "paused"),
        job={
            "fine_tuned_model": name,
            "finished_at": int(time.time()),
            "estimated_finish": None,
            "trained_tokens": trainer.tokens_seen,
        },
    )
    store.add_fine_tuning_event(job.id, f"New fine-tuned model created: {name}")
    store.add_fine_tuning_event(job.id, "The job has successfully completed")


def _estimate(
    store: Store, job_id: str, summary: DataSummary, data: PreparedData, seconds: float
) -> None:
    """Training time from the speed of the evaluation pass just run: a training step costs
    about three forward passes (forward, and a backward pass twice as dear)."""
    evaluated = sum(len(b.input_ids) for b in [*data.validation, *data.general])
    if not evaluated or seconds <= 0:
        return
    estimate = summary.estimate_seconds(evaluated / seconds / 3)
    store.update_fine_tuning_job(job_id, job={"estimated_finish": int(time.time() + estimate)})
    store.add_fine_tuning_event(
        job_id,
        f"Estimated training time: about {estimate:.0f} s for {summary.total_steps} steps",
        data={"estimated_seconds": estimate},
    )


def _record_perplexity(store: Store, job_id: str, when: str, values: dict[str, float]) -> None:
    job = store.get_fine_tuning_job(job_id)
    assert job is not None
    ember = job.job["ember"]
    ppl = {**ember.get("perplexity", {}), when: _finite(values)}
    store.update_fine_tuning_job(job_id, job={"ember": {**ember, "perplexity": ppl}})
    shown = ", ".join(f"{k}={v:.3f}" for k, v in values.items() if math.isfinite(v))
    store.add_fine_tuning_event(
        job_id, f"Perplexity {when} training: {shown}", type="metrics", data={when: _finite(values)}
    )


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


def _terminate(observer: JobObserver, _signum: int, _frame: FrameType | None) -> None:
    observer.terminated = True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ember.adapt.worker JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run(args[0], load_settings())


if __name__ == "__main__":
    sys.exit(main())
