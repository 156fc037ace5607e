"""``ember data synth``: question/answer training data from documents, written by a local model.

The work runs in the server as a synthetic-data job (``POST /v1/ember/synth_jobs``, see
``ember.services.synth_jobs``): documents come from a vector store (``--store``, by name or id)
or from uploaded files (``--file``). This command starts the job, shows its progress, and
writes the checked, deduplicated pairs (OpenAI chat JSONL) to ``--output``, with the AIGC
label beside it; the same pairs are already stored as a ``fine-tune`` file whose id it prints.
Interrupting the command leaves the job running (``ember data synth --follow ID`` follows it
again); a restarted server resumes it at the first passage not yet answered.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import openai
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ember.cli.tune import BaseUrl, api_errors, server_client
from ember.guard.aigc import label_file

app = typer.Typer(help="Prepare training data.", no_args_is_help=True)
_JOBS = "/ember/synth_jobs"


def _store_id(client: openai.OpenAI, store: str) -> str:
    for candidate in client.vector_stores.list(limit=100):
        if store in (candidate.id, candidate.name):
            return candidate.id
    raise typer.BadParameter(f"no vector store named or with id '{store}'", param_hint="--store")


def _call(client: openai.OpenAI, method: str, path: str, body: Any = None) -> dict[str, Any]:
    if method == "POST":
        response = client.post(path, cast_to=httpx.Response, body=body)
    else:
        response = client.get(path, cast_to=httpx.Response)
    data: dict[str, Any] = response.json()
    return data


def _follow(client: openai.OpenAI, job: dict[str, Any], console: Console) -> dict[str, Any]:
    columns = (TextColumn("writing pairs"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("synth", total=job["passages"]["total"])
        while True:
            progress.update(task, completed=job["passages"]["completed"])
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(1.0)
            job = _call(client, "GET", f"{_JOBS}/{job['id']}")


@app.command()
def synth(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")],
    store: Annotated[
        str | None, typer.Option(help="A vector store's name or id: its files' text.")
    ] = None,
    file: Annotated[
        list[str] | None, typer.Option("--file", help="An uploaded file id (repeatable).")
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="The model that writes.")] = "default",
    per_passage: Annotated[int, typer.Option(help="Questions asked per passage.")] = 3,
    max_passages: Annotated[int, typer.Option(help="Stop after this many passages.")] = 200,
    system: Annotated[
        str | None, typer.Option(help="A system message for every training example.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed of the first passage.")] = 0,
    follow: Annotated[
        str | None, typer.Option("--follow", help="Follow an existing job instead.")
    ] = None,
    base_url: BaseUrl = None,
) -> None:
    """Turn documents into validated, deduplicated question/answer pairs (chat JSONL)."""
    if not store and not file and not follow:
        raise typer.BadParameter("give --store or --file (or --follow JOB_ID)")
    console = Console(stderr=True, highlight=False)
    with api_errors():
        client = server_client(base_url)
        if follow:
            job = _call(client, "GET", f"{_JOBS}/{follow}")
        else:
            body = {
                "model": model,
                "vector_store_id": _store_id(client, store) if store else None,
                "file_ids": file or [],
                "questions_per_passage": per_passage,
                "max_passages": max_passages,
                "system": system,
                "seed": seed,
            }
            job = _call(client, "POST", _JOBS, body)
            console.print(f"job {job['id']}: {job['passages']['total']} passages")
        job = _follow(client, job, console)
        out = Console(highlight=False)
        if job["status"] != "succeeded":
            error = job.get("error") or {}
            console.print(f"[red]Error:[/red] job {job['status']}: {error.get('message', '')}")
            raise typer.Exit(1)
        output.write_bytes(client.files.content(job["output_file_id"]).read())
        label_file(output, job["aigc"])
        pairs = job["pairs"]
        out.print(
            f"{pairs['kept']} pairs from {job['passages']['total']} passages written to {output}"
        )
        for reason, count in sorted(pairs["dropped"].items()):
            out.print(f"dropped {count}: {reason}")
        out.print(f"uploaded as {job['output_file_id']}")
