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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from ember.adapt import auto, learning_check
from ember.adapt.data import (
    Block,
    Conversation,
    DataSummary,
    pack,
    parse_jsonl,
    rows,
    split_validation,
    tokenize_conversation,
    tokenize_text,
)
from ember.adapt.general_text import GENERAL_TEXT
from ember.adapt.objectives import Dpo, Objective, PreferencePair, Supervised
from ember.adapt.perplexity import perplexity
from ember.adapt.preference import parse_preferences, tokenize_preference
from ember.adapt.results import results_csv
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
                **report.metrics,
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
    store = Store(settings.database)
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
    """A job's data, ready to train on: items are blocks (supervised) or pairs (DPO)."""

    train: list[Any]
    validation: list[Any]
    general: list[Block]
    summary: DataSummary
    chosen: auto.Chosen
    held: list[Conversation] = field(default_factory=list)  # for exact match
    train_sample: list[Conversation] = field(default_factory=list)

    @property
    def validation_blocks(self) -> list[Block]:
        if self.validation and isinstance(self.validation[0], PreferencePair):
            return [p.chosen for p in self.validation]
        return self.validation


def method_of(job: JobRecord) -> str:
    return str((job.job.get("method") or {}).get("type", "supervised"))


def prepare(job: JobRecord, tokenizer: Any, files: FileReader) -> PreparedData:
    """Parse, split, tokenize and cut the job's data, and resolve ``"auto"`` (the same way
    on every resume)."""
    ember = job.job["ember"]
    seed = int(job.job["seed"])
    seq_len = int(ember["seq_len"])
    eos = tokenizer.eos_token_id
    held: list[Any]
    train: list[Any]
    validation: list[Any]
    if method_of(job) == "dpo":
        parsed = parse_preferences(files.read(job.job["training_file"]))
        parsed.raise_for_problems("training_file")
        items: list[Any] = parsed.preferences
        formats = {"preference": len(items)}
        if job.job["validation_file"]:
            checked = parse_preferences(files.read(job.job["validation_file"]))
            checked.raise_for_problems("validation_file")
            held = list(checked.preferences)
        else:
            items, held = split_validation(items, float(ember["validation_fraction"]), seed)
        train = [tokenize_preference(tokenizer, p, seq_len, eos) for p in items]
        validation = [tokenize_preference(tokenizer, p, seq_len, eos) for p in held]
        tokens = sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in train)
        trained = sum(_labelled(p.chosen) + _labelled(p.rejected) for p in train)
        held, sample = [], []
    else:
        training = parse_jsonl(files.read(job.job["training_file"]))
        training.raise_for_problems("training_file")
        conversations: list[Conversation] = training.conversations
        formats = training.formats
        if job.job["validation_file"]:
            validation_data = parse_jsonl(files.read(job.job["validation_file"]))
            validation_data.raise_for_problems("validation_file")
            held = validation_data.conversations
        else:
            conversations, held = split_validation(
                conversations, float(ember["validation_fraction"]), seed
            )
        examples = [tokenize_conversation(tokenizer, c) for c in conversations]
        train = rows(examples, seq_len, eos)
        validation = rows([tokenize_conversation(tokenizer, c) for c in held], seq_len, eos)
        tokens = sum(len(e.input_ids) for e in examples)
        trained = sum(e.trained_tokens for e in examples)
        sample = conversations[: learning_check.MAX_GENERATIONS]
    general = pack([tokenize_text(tokenizer, GENERAL_TEXT)], seq_len, None)
    chosen = choose_hyperparameters(job, examples=len(train), tokens=tokens)
    config = training_config(job, chosen)
    summary = DataSummary(
        examples=len(train),
        tokens=tokens,
        trained_tokens=trained,
        blocks=len(train),
        steps_per_epoch=config.steps_per_epoch(len(train)),
        total_steps=config.total_steps(len(train)),
        formats=formats,
    )
    return PreparedData(train, validation, general, summary, chosen, held, sample)


def _labelled(block: Block) -> int:
    return sum(1 for label in block.labels if label != -100)


def choose_hyperparameters(job: JobRecord, *, examples: int, tokens: int) -> auto.Chosen:
    """The job's hyperparameters as requested, ``"auto"`` resolved from the data."""
    requested = job.internal.get("requested_hyperparameters") or job.job["hyperparameters"]

    def explicit(name: str) -> Any:
        value = requested.get(name, "auto")
        return None if value in ("auto", None) else value

    return auto.choose(
        examples=examples,
        tokens=tokens,
        method=method_of(job),
        n_epochs=explicit("n_epochs"),
        batch_size=explicit("batch_size"),
        learning_rate_multiplier=explicit("learning_rate_multiplier"),
    )


def training_config(job: JobRecord, chosen: auto.Chosen) -> TrainingConfig:
    ember = job.job["ember"]
    lora = ember["lora"]
    return TrainingConfig(
        n_epochs=chosen.n_epochs,
        batch_size=chosen.batch_size,
        learning_rate=chosen.learning_rate,
        seed=int(job.job["seed"]),
        checkpoint_every=int(ember["checkpoint_every"]),
        max_steps=ember.get("max_steps"),
        lora=LoraSettings(
            rank=int(lora["rank"]),
            alpha=int(lora["alpha"]),
            dropout=float(lora["dropout"]),
            target_modules=tuple(lora["target_modules"]),
        ),
    )


def objective_of(job: JobRecord) -> Objective:
    if method_of(job) == "dpo":
        hyper = job.job["method"]["dpo"]["hyperparameters"]
        beta = hyper.get("beta", "auto")
        return Dpo(beta=auto.DPO_BETA if beta == "auto" else float(beta))
    return Supervised()


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
    config = training_config(job, data.chosen)
    resuming = bool(checkpoint_dirs(workdir))
    pad_id = int(tokenizer.pad_token_id)
    if not resuming:
        _record_start(store, job, data)
        started = time.perf_counter()
        before = {
            "validation": perplexity(model, data.validation_blocks, pad_id=pad_id),
            "general": perplexity(model, data.general, pad_id=pad_id),
        }
        _record_perplexity(store, job.id, "before", before)
        _estimate(store, job.id, data.summary, data, time.perf_counter() - started)
        _record_check(store, job.id, "before", _score(model, tokenizer, data, pad_id))
    seed_everything(config.seed)
    model = add_lora(model, config.lora)
    observer = JobObserver(store, job.id)
    signal.signal(signal.SIGTERM, lambda _s, _f: _terminate(observer, _s, _f))
    trainer = LoraTrainer(
        model,
        data.train,
        config,
        workdir,
        pad_id=pad_id,
        observer=observer,
        objective=objective_of(job),
    )
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
        "validation": perplexity(trainer.model, data.validation_blocks, pad_id=pad_id),
        "general": perplexity(trainer.model, data.general, pad_id=pad_id),
    }
    _record_perplexity(store, job.id, "after", after)
    _record_check(store, job.id, "after", _score(trainer.model, tokenizer, data, pad_id))
    if observer.terminated:
        # The server is stopping: the job stays running, and the next server's worker
        # resumes at the last step and evaluates again.
        return
    results = _write_results(store, files, job.id)
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
            "result_files": [results],
        },
    )
    store.add_fine_tuning_event(job.id, f"New fine-tuned model created: {name}")
    store.add_fine_tuning_event(job.id, "The job has successfully completed")


def _record_start(store: Store, job: JobRecord, data: PreparedData) -> None:
    """The data summary and the resolved hyperparameters, on the job and in its events."""
    summary, chosen = data.summary, data.chosen
    method = job.job["method"]
    kind = method["type"]
    hyper = chosen.as_dict()
    method_hyper = {**method[kind]["hyperparameters"], **hyper}
    if kind == "dpo" and method_hyper.get("beta", "auto") == "auto":
        method_hyper["beta"] = auto.DPO_BETA
    store.update_fine_tuning_job(
        job.id,
        # What was asked, kept once: a restarted worker resolves "auto" again, the same way.
        internal={
            "requested_hyperparameters": job.internal.get("requested_hyperparameters")
            or job.job["hyperparameters"]
        },
        job={
            "hyperparameters": hyper,
            "method": {**method, kind: {**method[kind], "hyperparameters": method_hyper}},
            "ember": {
                **job.job["ember"],
                "data_summary": summary.__dict__,
                "learning_rate": chosen.learning_rate,
            },
        },
    )
    what = "preference pairs" if kind == "dpo" else "training examples"
    store.add_fine_tuning_event(
        job.id,
        f"Data: {summary.examples} {what}, {summary.tokens} tokens "
        f"({summary.trained_tokens} trained on), {summary.total_steps} steps",
        data=dict(summary.__dict__),
    )
    shown = ", ".join(f"{k}={v:g}" for k, v in hyper.items())
    why = "; ".join(chosen.reasons.values())
    store.add_fine_tuning_event(
        job.id,
        f"Hyperparameters: {shown}" + (f" (auto: {why})" if why else " (all as requested)"),
        data={**hyper, "learning_rate": chosen.learning_rate, "auto": chosen.reasons},
    )


def _score(model: Any, tokenizer: Any, data: PreparedData, pad_id: int) -> dict[str, Any]:
    if data.validation and isinstance(data.validation[0], PreferencePair):
        return learning_check.score_preferences(model, data.validation, pad_id=pad_id)
    return learning_check.score_supervised(
        model,
        tokenizer,
        held_blocks=data.validation,
        held=data.held,
        train_sample=data.train_sample,
        pad_id=pad_id,
    )


def _record_check(store: Store, job_id: str, when: str, scores: dict[str, Any]) -> None:
    """The learning check's scores; after training, the verdict (a warning when nothing
    measurable was learned)."""
    job = store.get_fine_tuning_job(job_id)
    assert job is not None
    ember = job.job["ember"]
    check = {**ember.get("learning_check", {}), when: scores}
    if when == "after" and "before" in check:
        learned, why = learning_check.verdict(check["before"], scores)
        check.update(learned=learned, summary=why)
        if learned:
            store.add_fine_tuning_event(job_id, f"Learning check: learned ({why})", data=check)
        else:
            store.add_fine_tuning_event(
                job_id,
                f"Learning check: no measurable learning ({why}); try more epochs, a higher "
                "learning_rate_multiplier or more data",
                level="warn",
                data=check,
            )
    else:
        store.add_fine_tuning_event(
            job_id, f"Learning check {when} training", type="metrics", data={when: scores}
        )
    store.update_fine_tuning_job(job_id, job={"ember": {**ember, "learning_check": check}})


def _write_results(store: Store, files: Any, job_id: str) -> str:
    """The result file (purpose ``fine-tune-results``): the step metrics and the learning
    check as CSV; its id goes in the job's ``result_files``."""
    events, _ = store.list_fine_tuning_events(job_id, limit=1_000_000)
    job = store.get_fine_tuning_job(job_id)
    assert job is not None
    data = results_csv([e.data for e in events if e.type == "metrics" and e.data], job.job)
    record = files.create(
        f"{job_id}-results.csv", "fine-tune-results", data, allow_output_purposes=True
    )
    return str(record.id)


def _estimate(
    store: Store, job_id: str, summary: DataSummary, data: PreparedData, seconds: float
) -> None:
    """Training time from the speed of the evaluation pass just run: a training step costs
    about three forward passes (forward, and a backward pass twice as dear)."""
    evaluated = sum(len(b.input_ids) for b in [*data.validation_blocks, *data.general])
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
    _stop_with_parent()
    return run(args[0], load_settings())


def _stop_with_parent(every_s: float = 1.0) -> None:
    """SIGTERM this worker (checkpoint, then exit) when the server that started it dies, so
    that a killed replica's job is resumed by another replica and never runs twice."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        logger.warning("the server that started this worker is gone: checkpointing, exiting")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
