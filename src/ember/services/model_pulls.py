"""Model pulls started over the API (``POST /v1/ember/models/pull``), each run as a job.

``start`` does in the request what can be refused (the repo's name, the repo and revision on
the hub, the choice of files, a free model id: ``ember.models.hub.prepare_pull``), so a bad
request is a 4xx at once; the download then runs on a thread of its own and the job's
``progress`` follows it byte by byte, for the console to poll. A pull ends ``succeeded`` (the
model is registered and served from then on) or ``failed`` with the error the CLI would have
printed. Jobs live in this server's memory: a restarted server forgets them, and the
``.part`` files an interrupted pull leaves are resumed by the next pull of the same repo.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from ember.errors import ConflictError, EmberError, NotFoundError
from ember.models.hub import PreparedPull, finish_pull, prepare_pull
from ember.models.hub_client import HubClient
from ember.settings import Settings
from ember.store import Store

logger = logging.getLogger(__name__)

HubFactory = Callable[[], HubClient]
_KEPT = 50  # finished jobs remembered, newest first


class _Stopped(Exception):
    """Raised from the progress callback to end a download when the server stops."""


class ModelPullService:
    """Starts pulls, runs each on a thread, and answers where each one is."""

    def __init__(self, settings: Settings, store: Store, hub: HubFactory | None = None) -> None:
        self.settings = settings
        self.store = store
        self._hub = hub or self._default_hub
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _default_hub(self) -> HubClient:
        token = self.settings.hub_token
        return HubClient(self.settings.hub_url, token.get_secret_value() if token else None)

    def start(
        self,
        repo: str,
        *,
        revision: str = "main",
        files: list[str] | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """Plan the pull (refusing what cannot be pulled) and start fetching its files."""
        hub = self._hub()
        try:
            prepared = prepare_pull(
                repo,
                settings=self.settings,
                store=self.store,
                hub=hub,
                files=files,
                revision=revision,
                model_id=model_id,
            )
            job = self._register(prepared)
        except BaseException:
            hub.close()
            raise
        thread = threading.Thread(
            target=self._run, args=(job["id"], prepared, hub), name="model-pull", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return self.get(job["id"])

    def _register(self, prepared: PreparedPull) -> dict[str, Any]:
        with self._lock:
            for other in self._jobs.values():
                if other["status"] != "running":
                    continue
                if (other["repo"], other["revision"]) == (prepared.repo, prepared.revision):
                    raise ConflictError(
                        f"'{prepared.repo}' at revision '{prepared.revision}' is being pulled "
                        f"already (job {other['id']}).",
                        param="repo",
                    )
                if other["model"] == prepared.model_id:
                    raise ConflictError(
                        f"A pull running now (job {other['id']}) registers the id "
                        f"'{prepared.model_id}'; choose another id.",
                        param="model_id",
                    )
            job: dict[str, Any] = {
                "id": f"pull-{secrets.token_hex(8)}",
                "object": "ember.model_pull",
                "created_at": int(time.time()),
                "status": "running",
                "repo": prepared.repo,
                "revision": prepared.revision,
                "model": prepared.model_id,
                "engine": prepared.plan.engine,
                "files": [{"path": f.path, "size": f.size} for f in prepared.plan.files],
                "progress": {"bytes": 0, "total_bytes": prepared.total_bytes, "file": None},
                "error": None,
                "finished_at": None,
            }
            self._jobs[job["id"]] = job
            finished = [i for i, j in self._jobs.items() if j["status"] != "running"]
            for old in finished[:-_KEPT]:  # oldest first: the dict keeps the order of starts
                del self._jobs[old]
        return job

    def _run(self, job_id: str, prepared: PreparedPull, hub: HubClient) -> None:
        def report(name: str, done: int) -> None:
            if self._stop.is_set():
                raise _Stopped
            self._update(job_id, progress={"bytes": done, "file": name})

        try:
            finish_pull(
                prepared, settings=self.settings, store=self.store, hub=hub, on_progress=report
            )
        except _Stopped:
            self._end(
                job_id, "failed", ("server_stopped", "The server stopped; pull again to resume.")
            )
        except EmberError as exc:
            self._end(job_id, "failed", (exc.code or "hub_error", exc.message))
        except Exception as exc:  # one pull's failure is the job's, never the server's
            logger.exception("model pull %s failed", job_id)
            message = (
                f"The pull failed with {type(exc).__name__}; the server log has the details. "
                "Pull again to resume."
            )
            self._end(job_id, "failed", ("server_error", message))
        else:
            self._end(job_id, "succeeded", None)
        finally:
            hub.close()

    def _update(self, job_id: str, *, progress: dict[str, Any]) -> None:
        with self._lock:
            self._jobs[job_id]["progress"].update(progress)

    def _end(self, job_id: str, status: str, error: tuple[str, str] | None) -> None:
        with self._lock:
            job = self._jobs[job_id]
            job["status"] = status
            job["finished_at"] = int(time.time())
            if error is not None:
                job["error"] = {"code": error[0], "message": error[1]}
            else:
                job["progress"]["bytes"] = job["progress"]["total_bytes"]

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFoundError(f"No model pull found with id '{job_id}'.", param="id")
            return {**job, "progress": dict(job["progress"])}

    def list_jobs(self) -> list[dict[str, Any]]:
        """Every remembered pull, newest first."""
        with self._lock:
            ids = list(reversed(self._jobs))
        return [self.get(i) for i in ids]

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop running downloads at their next chunk (their ``.part`` files stay)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
