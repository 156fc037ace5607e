"""Fine-tuning jobs (``/v1/fine_tuning/jobs``): create, list, control, and supervise a worker.

A job is checked when it is created (the model can be trained, the files exist and every
line of them is valid: the 400 names each bad line), then queued. Training runs in a
separate worker process (``python -m ember.adapt.worker JOB_ID``), one job at a time, so
the server keeps answering while the CPU trains. The supervisor here starts the oldest
runnable job, notices a worker that died (``kill -9``, out of memory) and starts it again,
and a restarted server does the same for the job it was running: the worker resumes from
its last checkpoint. Cancel kills the worker and deletes the job's files; pause asks the
worker to checkpoint and stop; resume queues the job again.

Replicas sharing a database each supervise: a job runs where its lease is held
(``ember.services.leases``). A worker whose server dies checkpoints and exits (it watches
its parent), the lease lapses, and another replica's supervisor takes the job over from
that checkpoint (checkpoints live under ``shared_dir``, which replicas must share).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ember.adapt.auto import BASE_LEARNING_RATE
from ember.adapt.data import MAX_REPORTED_PROBLEMS, LineProblem, parse_jsonl
from ember.adapt.preference import parse_preferences
from ember.adapt.training import DEFAULT_TARGET_MODULES
from ember.core.request_context import ANONYMOUS, Caller
from ember.engines.base import engine_traits
from ember.errors import (
    ConflictError,
    InvalidRequestError,
    InvalidTrainingDataError,
    NotFoundError,
    UnsupportedParameterError,
)
from ember.models.registry import ModelRegistry
from ember.models.spec import ModelSpec
from ember.services.files import FileService
from ember.services.leases import LeaseKeeper
from ember.settings import Settings
from ember.store import FileRecord, Store
from ember.store.fine_tuning import CheckpointRecord, EventRecord, JobRecord

logger = logging.getLogger(__name__)

RUNNABLE = ("running", "queued")
LEASE_KIND = "fine_tuning"
ACTIVE = ("validating_files", "queued", "running", "paused")
MAX_RESTARTS = 3
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class JobRequest:
    """A validated ``POST /v1/fine_tuning/jobs`` body; None stands for ``"auto"`` (resolved
    from the data by the worker)."""

    model: str
    training_file: str
    method: str = "supervised"  # or "dpo"
    beta: float | None = None
    validation_file: str | None = None
    suffix: str | None = None
    seed: int | None = None
    n_epochs: int | None = None
    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    metadata: dict[str, str] | None = None
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    seq_len: int | None = None
    checkpoint_every: int | None = None
    max_steps: int | None = None
    validation_fraction: float = 0.1
    extra: dict[str, Any] = field(default_factory=dict)


def job_dir(settings: Settings, job_id: str) -> Path:
    return settings.fine_tuning_dir / job_id


class FineTuningService:
    """The jobs' use cases and the supervisor of their worker process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        registry: ModelRegistry,
        files: FileService,
        leases: LeaseKeeper,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.files = files
        self.leases = leases
        self._worker: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None  # a worker left running by a previous server
        self._worker_job: str | None = None
        self._task: asyncio.Task[None] | None = None

    # -- use cases ------------------------------------------------------------------------

    def create(self, request: JobRequest, *, caller: Caller = ANONYMOUS) -> JobRecord:
        spec = self._trainable(request.model)
        summaries = {
            "training_file": self._check_file(
                request.training_file, "training_file", request.method, caller
            )
        }
        if request.validation_file:
            summaries["validation_file"] = self._check_file(
                request.validation_file, "validation_file", request.method, caller
            )
        path = spec.resolve_path(self.settings)
        base: dict[str, Any] = (
            {"path": str(path.parent), "gguf_file": path.name}
            if path.suffix == ".gguf"
            else {"path": str(path), "gguf_file": spec.gguf_file}
        )
        base["context_length"] = spec.context_length
        job_id = f"ftjob-{secrets.token_hex(12)}"
        now = int(time.time())
        hyperparameters: dict[str, Any] = {
            "n_epochs": request.n_epochs or "auto",
            "batch_size": request.batch_size or "auto",
            "learning_rate_multiplier": request.learning_rate_multiplier or "auto",
        }
        method_hyper = dict(hyperparameters)
        if request.method == "dpo":
            method_hyper["beta"] = request.beta if request.beta is not None else "auto"
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        lora = {
            "rank": request.lora_rank,
            "alpha": request.lora_alpha,
            "dropout": request.lora_dropout,
            "target_modules": list(request.target_modules),
        }
        training = {
            "seq_len": request.seq_len or self.settings.fine_tuning_seq_len,
            "checkpoint_every": request.checkpoint_every
            or self.settings.fine_tuning_checkpoint_every,
            "max_steps": request.max_steps,
            "validation_fraction": request.validation_fraction,
            "learning_rate": BASE_LEARNING_RATE * request.learning_rate_multiplier
            if request.learning_rate_multiplier
            else None,
        }
        job = {
            "object": "fine_tuning.job",
            "id": job_id,
            "created_at": now,
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": hyperparameters,
            "model": spec.id,
            "organization_id": "org-ember",
            "result_files": [],
            "status": "queued",
            "trained_tokens": None,
            "training_file": request.training_file,
            "validation_file": request.validation_file,
            "integrations": [],
            "seed": seed,
            "estimated_finish": None,
            "method": {"type": request.method, request.method: {"hyperparameters": method_hyper}},
            "metadata": request.metadata,
            "user_provided_suffix": request.suffix,
            "ember": {"lora": lora, **training, "data": summaries, "perplexity": {}},
        }
        internal = {
            "base": base,
            "suffix": request.suffix,
            "workdir": str(job_dir(self.settings, job_id)),
            "adapter": str(job_dir(self.settings, job_id) / "adapter"),
            "restarts": 0,
        }
        record = JobRecord(
            job_id, now, "queued", None, None, None, job, internal, owner=caller.owner
        )
        self.store.add_fine_tuning_job(record)
        for name, summary in summaries.items():
            formats = ", ".join(f"{n} {kind}" for kind, n in sorted(summary["formats"].items()))
            self.store.add_fine_tuning_event(
                job_id,
                f"Validated {name.replace('_', ' ')}: {summary['examples']} examples ({formats})",
            )
        self.store.add_fine_tuning_event(job_id, "Job queued")
        return record

    def _trainable(self, model: str) -> ModelSpec:
        """The model ``model`` names, if it can be fine-tuned (else a 4xx saying why)."""
        spec = self.registry.resolve(model)
        if spec.kind != "chat":
            raise InvalidRequestError(
                f"The model '{spec.id}' is a {spec.kind} model; fine-tune a chat model.",
                param="model",
            )
        if spec.source == "fine-tune":
            raise UnsupportedParameterError(
                f"'{spec.id}' is already a fine-tuned model; fine-tune its base model with "
                "the combined data instead.",
                param="model",
            )
        if not engine_traits(spec.engine).fine_tuning:
            raise UnsupportedParameterError(
                f"The model '{spec.id}' (engine {spec.engine}) cannot be fine-tuned.",
                param="model",
            )
        return spec

    def check(
        self,
        training_file: str,
        *,
        validation_file: str | None = None,
        method: str = "supervised",
        model: str | None = None,
        caller: Caller = ANONYMOUS,
    ) -> dict[str, Any]:
        """What ``create`` would find in these files, without creating a job: per file its
        examples and formats, and every bad line with its number (the first 50 listed).
        A file that is missing or not ``fine-tune`` data, or a model that cannot be
        fine-tuned, is the same 4xx ``create`` gives."""
        if model is not None:
            self._trainable(model)
        files = {"training_file": self._findings(training_file, "training_file", method, caller)}
        if validation_file:
            files["validation_file"] = self._findings(
                validation_file, "validation_file", method, caller
            )
        return {
            "object": "ember.fine_tuning.check",
            "method": method,
            "model": model,
            "ok": not any(f["problem_count"] for f in files.values()),
            "files": files,
        }

    def _check_file(
        self, file_id: str, param: str, method: str, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        examples, formats, problems = self._read_data(file_id, param, method, caller)[1:]
        if problems:
            raise InvalidTrainingDataError(param, problems)
        return {"examples": examples, "formats": formats}

    def _findings(self, file_id: str, param: str, method: str, caller: Caller) -> dict[str, Any]:
        record, examples, formats, problems = self._read_data(file_id, param, method, caller)
        return {
            "id": file_id,
            "filename": record.filename,
            "bytes": record.bytes,
            "examples": examples,
            "formats": formats,
            "problem_count": len(problems),
            "problems": [
                {"line": p.line, "reason": p.reason} for p in problems[:MAX_REPORTED_PROBLEMS]
            ],
        }

    def _read_data(
        self, file_id: str, param: str, method: str, caller: Caller
    ) -> tuple[FileRecord, int, dict[str, int], list[LineProblem]]:
        """The file's record, its examples, their formats and its bad lines."""
        try:
            record = self.files.get(file_id, caller=caller)
        except NotFoundError as exc:
            raise InvalidRequestError(f"No such file: '{file_id}'.", param=param) from exc
        if record.purpose != "fine-tune":
            raise InvalidRequestError(
                f"The file '{file_id}' has purpose '{record.purpose}'; upload training data "
                "with purpose 'fine-tune'.",
                param=param,
            )
        data = self.files.read(file_id)
        if method == "dpo":
            pairs = parse_preferences(data)
            examples, problems = len(pairs.preferences), pairs.problems
            formats = {"preference": examples} if examples else {}
        else:
            parsed = parse_jsonl(data)
            examples, formats, problems = len(parsed.conversations), parsed.formats, parsed.problems
        if not problems and not examples:
            problems = [LineProblem(0, "the file holds no examples")]
        return record, examples, formats, problems

    def get(self, job_id: str, *, caller: Caller = ANONYMOUS) -> JobRecord:
        """The job, if it exists for ``caller`` (another tenant's is a 404)."""
        record = self.store.get_fine_tuning_job(job_id)
        if record is None or not caller.may_see(record.owner):
            raise NotFoundError(f"No such fine-tuning job: '{job_id}'.", param="fine_tuning_job_id")
        return record

    def list_jobs(
        self, *, after: str | None = None, limit: int = 20, caller: Caller = ANONYMOUS
    ) -> tuple[list[JobRecord], bool]:
        return self.store.list_fine_tuning_jobs(after=after, limit=limit, owner=caller.owner)

    def events(
        self,
        job_id: str,
        *,
        after: str | None = None,
        limit: int = 20,
        caller: Caller = ANONYMOUS,
    ) -> tuple[list[EventRecord], bool]:
        self.get(job_id, caller=caller)
        return self.store.list_fine_tuning_events(job_id, after=after, limit=limit)

    def checkpoints(
        self,
        job_id: str,
        *,
        after: str | None = None,
        limit: int = 10,
        caller: Caller = ANONYMOUS,
    ) -> tuple[list[CheckpointRecord], bool]:
        self.get(job_id, caller=caller)
        return self.store.list_fine_tuning_checkpoints(job_id, after=after, limit=limit)

    def cancel(self, job_id: str, *, caller: Caller = ANONYMOUS) -> JobRecord:
        self.get(job_id, caller=caller)
        record = self._transition(job_id, ACTIVE, "cancelled", "cancel", "cancelled")
        if self._worker_job == job_id:
            self._stop_worker()
        shutil.rmtree(record.internal["workdir"], ignore_errors=True)
        self.store.add_fine_tuning_event(job_id, "Job cancelled; its checkpoints are deleted")
        return record

    def pause(self, job_id: str, *, caller: Caller = ANONYMOUS) -> JobRecord:
        self.get(job_id, caller=caller)
        record = self._transition(job_id, RUNNABLE, "paused", "pause", "paused")
        self.store.add_fine_tuning_event(job_id, "Job paused")
        return record

    def resume(self, job_id: str, *, caller: Caller = ANONYMOUS) -> JobRecord:
        self.get(job_id, caller=caller)
        record = self._transition(job_id, ("paused",), "queued", None, "resumed")
        self.store.add_fine_tuning_event(job_id, "Job resumed")
        return record

    def _transition(
        self, job_id: str, allowed: tuple[str, ...], status: str, requested: str | None, verb: str
    ) -> JobRecord:
        current = self.get(job_id)
        changes: dict[str, Any] = {"status": status, "requested": requested}
        if status == "cancelled":
            changes["job"] = {"finished_at": int(time.time()), "estimated_finish": None}
        updated = self.store.update_fine_tuning_job(job_id, only_if_status=allowed, **changes)
        if updated is None:
            raise ConflictError(
                f"The job '{job_id}' is {current.status}; only a job that is "
                f"{' or '.join(allowed)} can be {verb}.",
                param="fine_tuning_job_id",
            )
        return updated

    # -- supervision ----------------------------------------------------------------------

    def start(self) -> None:
        """Begin supervising (in the server's event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def close(self) -> None:
        """Stop supervising; a running worker is paused at its next step (it resumes when
        the server starts again)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._worker is not None and self._worker.poll() is None:
            self._worker.terminate()  # the worker checkpoints on SIGTERM, then exits
            try:
                await asyncio.to_thread(self._worker.wait, 60)
            except subprocess.TimeoutExpired:
                self._worker.kill()
        if self._worker_job is not None:  # handed back: another replica may go on at once
            await asyncio.to_thread(self.leases.release, LEASE_KIND, self._worker_job)

    async def _supervise(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except SQLAlchemyError as exc:  # the database is away: look again next time
                logger.warning("fine-tuning supervisor: %s", str(exc).split("\n")[0])
            except Exception:  # the supervisor must outlive any one bad job
                logger.exception("fine-tuning supervisor")
            await asyncio.sleep(_POLL_SECONDS)

    def tick(self) -> None:
        """Reap a finished worker; start the next runnable job when none runs."""
        if self._worker_alive():
            return
        if self._worker_job is not None:
            self._reap(self._worker_job)
        for job in self.store.fine_tuning_jobs_in(list(RUNNABLE)):
            if not self.leases.claim(LEASE_KIND, job.id):
                continue  # another live replica runs it
            if job.status == "running" and _is_worker(job.worker_pid, job.id):
                self._adopted_pid, self._worker_job = job.worker_pid, job.id
                return
            if job.status == "running":
                self.store.add_fine_tuning_event(
                    job.id,
                    f"Replica {self.leases.replica_id} takes the job over (the process running "
                    "it stopped); resuming from the last checkpoint",
                    level="warn",
                )
            self._spawn(job)
            return

    def _worker_alive(self) -> bool:
        if self._worker is not None:
            return self._worker.poll() is None
        if self._adopted_pid is not None and self._worker_job is not None:
            return _is_worker(self._adopted_pid, self._worker_job)
        return False

    def _reap(self, job_id: str) -> None:
        code = self._worker.returncode if self._worker is not None else None
        self._worker, self._adopted_pid, self._worker_job = None, None, None
        self.leases.release(LEASE_KIND, job_id)
        job = self.store.get_fine_tuning_job(job_id)
        if job is None or job.status != "running":
            return  # finished, failed, paused or cancelled: the worker said so itself
        restarts = int(job.internal.get("restarts", 0)) + 1
        if restarts > MAX_RESTARTS:
            self.store.update_fine_tuning_job(
                job_id,
                status="failed",
                worker_pid=None,
                job={
                    "finished_at": int(time.time()),
                    "error": {
                        "code": "worker_died",
                        "message": f"The training worker died {restarts} times (last exit "
                        f"code {code}).",
                        "param": None,
                    },
                },
            )
            self.store.add_fine_tuning_event(
                job_id, "Job failed: the worker kept dying", level="error"
            )
            return
        self.store.update_fine_tuning_job(job_id, worker_pid=None, internal={"restarts": restarts})
        self.store.add_fine_tuning_event(
            job_id,
            f"The training worker stopped unexpectedly (exit code {code}); resuming from the "
            "last checkpoint",
            level="warn",
        )

    def _spawn(self, job: JobRecord) -> None:
        workdir = Path(job.internal["workdir"])
        workdir.mkdir(parents=True, exist_ok=True)
        log = (workdir / "worker.log").open("ab")
        env = {**os.environ, "EMBER_HOME": str(self.settings.home)}
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "ember.adapt.worker", job.id],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        self._worker_job = job.id
        self.store.update_fine_tuning_job(job.id, worker_pid=self._worker.pid)

    def _stop_worker(self) -> None:
        if self._worker is not None and self._worker.poll() is None:
            self._worker.kill()
            self._worker.wait()
        elif self._adopted_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._adopted_pid, signal.SIGKILL)
        if self._worker_job is not None:
            self.leases.release(LEASE_KIND, self._worker_job)
        self._worker, self._adopted_pid, self._worker_job = None, None, None


def _is_worker(pid: int | None, job_id: str) -> bool:
    """Whether ``pid`` is alive and is the worker of ``job_id`` (not a recycled pid)."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"ember.adapt.worker" in cmdline and job_id.encode() in cmdline
