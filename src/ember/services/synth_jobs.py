"""Synthetic-data jobs: documents in, a checked training file out, written by a local model.

``create`` checks the request (the model exists, the vector store or files exist and parse),
cuts the documents into passages and stores them with a queued job; a background task then
asks the model, under a JSON schema, for question/answer pairs on each passage in turn,
storing each passage's pairs as it goes (``ember.store.synth``), so a restarted server
resumes where it stopped. At the end the pairs are checked and deduplicated
(``ember.adapt.synth``) and written as OpenAI chat JSONL into a ``fine-tune`` file, ready
for ``/v1/fine_tuning/jobs``. Jobs run one at a time, beside the server's other traffic.
Replicas sharing a database run a job where its lease is held (``ember.services.leases``);
a job whose replica died is taken over at a later sweep and resumed passage by passage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ember.adapt.synth import (
    QAPair,
    keep_good,
    max_reply_tokens,
    parse_pairs,
    passages,
    prompt,
    qa_schema,
)
from ember.core.request_context import ANONYMOUS, Caller
from ember.core.types import ChatMessage, OutputConstraint, SamplingParams
from ember.errors import ConflictError, EmberError, InvalidRequestError, NotFoundError
from ember.ground.parsers import parse
from ember.guard.aigc import implicit_label
from ember.models.registry import ModelRegistry
from ember.services.files import FileService
from ember.services.generation_types import ChatRequest, ContentDelta
from ember.services.leases import LeaseKeeper
from ember.services.text_generation import TextGenerationService
from ember.services.vector_stores import VectorStoreService
from ember.store.synth import UNFINISHED, SynthJobTables

logger = logging.getLogger(__name__)

LEASE_KIND = "synth"
_MAX_PASSAGES = 2000
_MAX_PER_PASSAGE = 10


@dataclass(frozen=True)
class SynthRequest:
    model: str
    vector_store_id: str | None = None
    file_ids: tuple[str, ...] = ()
    questions_per_passage: int = 3
    max_passages: int = 200
    system: str | None = None
    seed: int = 0


class SynthJobService:
    def __init__(
        self,
        tables: SynthJobTables,
        registry: ModelRegistry,
        text: TextGenerationService,
        files: FileService,
        vector_stores: VectorStoreService,
        *,
        producer: str,
        leases: LeaseKeeper | None = None,
    ) -> None:
        self.leases = leases
        self.tables = tables
        self.registry = registry
        self.text = text
        self.files = files
        self.vector_stores = vector_stores
        self.producer = producer
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._current: str | None = None

    # -- use cases ------------------------------------------------------------------------

    def create(self, request: SynthRequest, *, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        if not request.vector_store_id and not request.file_ids:
            raise InvalidRequestError(
                "Give `vector_store_id` or `file_ids`: the documents to write pairs from.",
                param="vector_store_id",
            )
        if not 1 <= request.questions_per_passage <= _MAX_PER_PASSAGE:
            raise InvalidRequestError(
                f"`questions_per_passage` must be between 1 and {_MAX_PER_PASSAGE}.",
                param="questions_per_passage",
            )
        if not 1 <= request.max_passages <= _MAX_PASSAGES:
            raise InvalidRequestError(
                f"`max_passages` must be between 1 and {_MAX_PASSAGES}.", param="max_passages"
            )
        model = self.registry.canonical_id(request.model)  # 404 model_not_found
        found = [p for text in self._documents(request, caller) for p in passages(text)]
        if not found:
            raise InvalidRequestError(
                "The documents hold no passage long enough to ask questions about.",
                param="file_ids" if request.file_ids else "vector_store_id",
            )
        chosen = found[: request.max_passages]
        now = int(time.time())
        job: dict[str, Any] = {
            "id": f"synthjob-{secrets.token_hex(12)}",
            "object": "ember.synth_job",
            "created_at": now,
            "status": "queued",
            "model": model,
            "vector_store_id": request.vector_store_id,
            "file_ids": list(request.file_ids),
            "questions_per_passage": request.questions_per_passage,
            "max_passages": request.max_passages,
            "system": request.system,
            "seed": request.seed,
            "passages": {"total": len(chosen), "completed": 0},
            "pairs": {"written": 0, "kept": 0, "dropped": {}},
            "output_file_id": None,
            "error": None,
            "finished_at": None,
            "aigc": None,
        }
        self.tables.create(job, chosen, owner=caller.owner)
        self._enqueue(job["id"])
        return job

    def get(self, job_id: str, *, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        job = self.tables.get(job_id)
        if job is None or not caller.may_see(self.tables.owner(job_id)):
            raise NotFoundError(f"No synthetic-data job found with id '{job_id}'.", param="id")
        return job

    def list_jobs(
        self, *, after: str | None, limit: int, caller: Caller = ANONYMOUS
    ) -> tuple[list[dict[str, Any]], bool]:
        return self.tables.page(after=after, limit=limit, owner=caller.owner)

    def cancel(self, job_id: str, *, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        self.get(job_id, caller=caller)
        job = self.tables.update(
            job_id,
            {"status": "cancelled", "finished_at": int(time.time())},
            only_if_status=UNFINISHED,
        )
        if job is None:
            raise ConflictError(
                f"The job '{job_id}' has already ended and cannot be cancelled.", param="id"
            )
        return job

    # -- the worker -----------------------------------------------------------------------

    def start(self) -> None:
        """Queue the jobs an earlier server left unfinished, then work the queue; at every
        lease sweep, queue again those no live replica holds."""
        self._sweep()
        self._task = asyncio.get_running_loop().create_task(self._loop())
        if self.leases is not None:
            self.leases.on_sweep(self._sweep)

    def _sweep(self) -> None:
        for job_id in self.tables.unfinished():
            self._enqueue(job_id)

    def _enqueue(self, job_id: str) -> None:
        if job_id not in self._queued and job_id != self._current:
            self._queued.add(job_id)
            self._queue.put_nowait(job_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            job_id = await self._queue.get()
            self._queued.discard(job_id)
            self._current = job_id
            try:
                await self.run(job_id)
            except asyncio.CancelledError:
                raise
            except EmberError as exc:
                self._fail(job_id, exc.code or "invalid_request", str(exc))
            except Exception as exc:  # one job's failure must not stop the queue
                # The detail stays in the server's log; the job's error names only its class.
                logger.exception("synthetic-data job %s failed", job_id)
                self._fail(
                    job_id,
                    "server_error",
                    f"The job failed with {type(exc).__name__} while generating or saving its "
                    "question-answer pairs; the server log has the details.",
                )
            finally:
                self._current = None

    async def run(self, job_id: str) -> None:
        """Work one job to its end (or until it is cancelled), if no other replica does."""
        if self.leases is None:
            await self._run(job_id)
            return
        if not await asyncio.to_thread(self.leases.claim, LEASE_KIND, job_id):
            return  # another live replica runs it
        try:
            await self._run(job_id)
        finally:
            await asyncio.to_thread(self.leases.release, LEASE_KIND, job_id)

    async def _run(self, job_id: str) -> None:
        job = self.tables.update(job_id, {"status": "running"}, only_if_status=UNFINISHED)
        if job is None:
            return  # cancelled while queued
        for idx, passage in self.tables.pending_passages(job_id):
            reply = await self._ask(job, passage, idx)
            pairs = parse_pairs(reply, passage)
            job["passages"]["completed"] += 1
            job["pairs"]["written"] += len(pairs)
            progress = {"passages": job["passages"], "pairs": job["pairs"]}
            as_rows = [{"question": p.question, "answer": p.answer} for p in pairs]
            if not self.tables.record_pairs(job_id, idx, as_rows, progress):
                return  # cancelled meanwhile: what was written stays, nothing more runs
        await asyncio.to_thread(self._finish, job)

    async def _ask(self, job: dict[str, Any], passage: str, idx: int) -> str:
        count = int(job["questions_per_passage"])
        request = ChatRequest(
            model=job["model"],
            messages=[
                ChatMessage(role=m["role"], content=m["content"])  # type: ignore[arg-type]
                for m in prompt(passage, count)
            ],
            params=SamplingParams(
                max_tokens=max_reply_tokens(count), temperature=0.3, seed=int(job["seed"]) + idx
            ),
            response_format=OutputConstraint(kind="json_schema", schema=qa_schema(count)),
        )
        prepared = await self.text.prepare_chat(request, endpoint="synth")
        parts = [e.text async for e in self.text.run(prepared) if isinstance(e, ContentDelta)]
        return "".join(parts)

    def _finish(self, job: dict[str, Any]) -> None:
        written = [
            QAPair(pair["question"], pair["answer"], passage)
            for passage, pairs in self.tables.all_pairs(job["id"])
            for pair in pairs
        ]
        kept, dropped = keep_good(written)
        pairs = {"written": len(written), "kept": len(kept), "dropped": dropped}
        if not kept:
            self.tables.update(
                job["id"],
                {
                    "status": "failed",
                    "pairs": pairs,
                    "finished_at": int(time.time()),
                    "error": {
                        "code": "no_valid_pairs",
                        "message": "The model wrote no pair that passed the checks: "
                        + json.dumps(dropped),
                    },
                },
                only_if_status=("running",),
            )
            return
        data = "".join(pair.to_chat_line(job["system"]) + "\n" for pair in kept)
        record = self.files.create(
            f"{job['id']}.jsonl",
            "fine-tune",
            data.encode("utf-8"),
            caller=Caller(tenant=self.tables.owner(job["id"])),  # the job's tenant owns it
        )
        self.tables.update(
            job["id"],
            {
                "status": "succeeded",
                "pairs": pairs,
                "output_file_id": record.id,
                "finished_at": int(time.time()),
                "aigc": implicit_label(self.producer, job["id"], data),
            },
            only_if_status=("running",),
        )

    def _fail(self, job_id: str, code: str, message: str) -> None:
        self.tables.update(
            job_id,
            {
                "status": "failed",
                "finished_at": int(time.time()),
                "error": {"code": code, "message": message},
            },
            only_if_status=UNFINISHED,
        )

    def _documents(self, request: SynthRequest, caller: Caller) -> list[str]:
        texts: list[str] = []
        if request.vector_store_id:
            store_id = request.vector_store_id
            self.vector_stores.get(store_id, caller=caller)  # 404 when missing or not theirs
            after: str | None = None
            while True:
                page = self.vector_stores.list_files(
                    store_id, limit=100, order="asc", after=after, status="completed"
                )
                for item in page["data"]:
                    texts.append(self._store_file_text(store_id, item["id"]))
                if not page["has_more"] or not page["data"]:
                    break
                after = page["data"][-1]["id"]
        texts += [self._file_text(file_id, caller) for file_id in request.file_ids]
        return texts

    def _file_text(self, file_id: str, caller: Caller) -> str:
        record = self.files.get(file_id, caller=caller)  # 404 when missing or not theirs
        sections = parse(record.filename, self.files.read(file_id))
        return "\n\n".join(section.text for section in sections)

    def _store_file_text(self, store_id: str, file_id: str) -> str:
        """The file as uploaded; its stored chunks (which overlap) if it was deleted since."""
        try:
            return self._file_text(file_id, ANONYMOUS)  # in a store the caller may read
        except NotFoundError:
            content = self.vector_stores.file_content(store_id, file_id)
            return "\n\n".join(part["text"] for part in content["data"])
