"""``ember tune``: create and follow fine-tuning jobs, list, show, cancel, export.

Jobs run under the server (it supervises the training worker), so these commands talk to it
through the official ``openai`` client at ``--base-url`` (default: the configured host and
port); ``export`` works on the store and the job's files directly. Progress bars and events
go to stderr, results to stdout; every API error becomes one red line and exit code 1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

import openai
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ember.errors import EmberError
from ember.settings import load_settings

app = typer.Typer(
    help="Fine-tune models with LoRA: create and follow jobs, list, show, cancel, export.",
    no_args_is_help=True,
)
FINISHED = ("succeeded", "failed", "cancelled")
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url", help="The Ember server's /v1 URL (default: host and port from the settings)."
    ),
]


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def server_client(base_url: str | None) -> openai.OpenAI:
    settings = load_settings()
    url = base_url or f"http://{settings.host}:{settings.port}/v1"
    key = settings.api_keys[0].get_secret_value() if settings.api_keys else "not-needed"
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=600)


@contextmanager
def api_errors() -> Iterator[None]:
    try:
        yield
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        message = body.get("message") or str(exc)
        _stderr().print(f"[red]Error:[/red] {escape(str(message))}")
        raise typer.Exit(1) from exc
    except openai.APIConnectionError as exc:
        _stderr().print(
            "[red]Error:[/red] cannot reach the Ember server; start it with `ember serve` "
            "or pass --base-url."
        )
        raise typer.Exit(1) from exc
    except EmberError as exc:
        _stderr().print(f"[red]Error:[/red] {escape(exc.message)}")
        raise typer.Exit(1) from exc


@app.command()
def create(
    training_file: Annotated[Path, typer.Argument(help="JSONL: OpenAI chat, Alpaca or ShareGPT.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The base model to fine-tune.")],
    validation_file: Annotated[Path | None, typer.Option(help="Held-out JSONL.")] = None,
    suffix: Annotated[str | None, typer.Option(help="Part of the new model's name.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for a reproducible run.")] = None,
    epochs: Annotated[
        int | None, typer.Option(help="n_epochs (default auto: from the data).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Examples per step (default auto).")
    ] = None,
    lr_multiplier: Annotated[
        float | None, typer.Option(help="learning_rate_multiplier (x 2e-4; default auto).")
    ] = None,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 16,
    dropout: Annotated[float, typer.Option(help="LoRA dropout.")] = 0.05,
    target_modules: Annotated[
        str, typer.Option(help="Comma-separated linear layers that get LoRA weights.")
    ] = "q_proj,k_proj,v_proj,o_proj",
    seq_len: Annotated[int | None, typer.Option(help="Longest training row in tokens.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    follow: Annotated[bool, typer.Option(help="Show progress until the job ends.")] = True,
    base_url: BaseUrl = None,
) -> None:
    """Upload TRAINING_FILE, start a LoRA fine-tuning job, and follow it."""
    with api_errors():
        client = server_client(base_url)
        uploaded = client.files.create(file=training_file.open("rb"), purpose="fine-tune")
        validation = (
            client.files.create(file=validation_file.open("rb"), purpose="fine-tune").id
            if validation_file
            else None
        )
        hyper: dict[str, Any] = {
            k: v
            for k, v in (
                ("n_epochs", epochs),
                ("batch_size", batch_size),
                ("learning_rate_multiplier", lr_multiplier),
            )
            if v is not None
        }
        ember: dict[str, Any] = {
            "lora": {
                "rank": rank,
                "alpha": alpha,
                "dropout": dropout,
                "target_modules": [m.strip() for m in target_modules.split(",") if m.strip()],
            }
        }
        if seq_len is not None:
            ember["seq_len"] = seq_len
        if max_steps is not None:
            ember["max_steps"] = max_steps
        method: Any = {"type": "supervised", "supervised": {"hyperparameters": hyper}}
        job = client.fine_tuning.jobs.create(
            model=model,
            training_file=uploaded.id,
            validation_file=validation,
            suffix=suffix,
            seed=seed,
            method=method,
            extra_body={"ember": ember},
        )
        _stdout().print(job.id)
        if follow:
            _follow(client, job.id)


@app.command("follow")
def follow_job(job_id: str, base_url: BaseUrl = None) -> None:
    """Show a running job's progress (loss, ETA) and events until it ends."""
    with api_errors():
        _follow(server_client(base_url), job_id)


def _follow(client: openai.OpenAI, job_id: str) -> None:
    err = _stderr()
    seen: set[str] = set()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("step {task.fields[step]}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("ETA {task.fields[eta]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        task = progress.add_task(job_id, total=None, step="-", loss="-", eta="-")
        while True:
            job = client.fine_tuning.jobs.retrieve(job_id)
            events = list(client.fine_tuning.jobs.list_events(job_id, limit=100))
            for event in reversed(events):
                if event.id in seen:
                    continue
                seen.add(event.id)
                data = event.data or {}
                if isinstance(data, dict) and "train_loss" in data:
                    eta = max(0, int(data.get("estimated_finish", time.time()) - time.time()))
                    progress.update(
                        task,
                        total=data["total_steps"],
                        completed=data["step"],
                        step=f"{data['step']}/{data['total_steps']}",
                        loss=f"{data['train_loss']:.4f}",
                        eta=f"{eta // 60}m{eta % 60:02d}s",
                    )
                else:
                    progress.console.print(escape(event.message))
            progress.update(task, description=f"{job_id} {job.status}")
            if job.status in FINISHED or job.status == "paused":
                break
            time.sleep(1.0)
    _print_job(job)
    if job.status == "failed":
        raise typer.Exit(1)


def _print_job(job: Any) -> None:
    out = _stdout()
    ember = (job.model_extra or {}).get("ember", {})
    table = Table(show_header=False, box=None)
    for name, value in (
        ("id", job.id),
        ("status", job.status),
        ("model", job.model),
        ("fine_tuned_model", job.fine_tuned_model or "-"),
        ("trained_tokens", job.trained_tokens or "-"),
        ("hyperparameters", job.hyperparameters.model_dump() if job.hyperparameters else "-"),
        ("lora", ember.get("lora", "-")),
        ("error", job.error.message if job.error and job.error.message else "-"),
    ):
        table.add_row(name, escape(str(value)))
    ppl = ember.get("perplexity", {})
    for when in ("before", "after"):
        for split, value in (ppl.get(when) or {}).items():
            shown = f"{value:.3f}" if isinstance(value, float) else "-"
            table.add_row(f"perplexity {when} ({split})", shown)
    check = ember.get("learning_check") or {}
    if "learned" in check:
        verdict = "learned" if check["learned"] else "NO MEASURABLE LEARNING"
        table.add_row("learning check", escape(f"{verdict}: {check.get('summary', '')}"))
    out.print(table)


@app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    base_url: BaseUrl = None,
) -> None:
    """Fine-tuning jobs, newest first."""
    with api_errors():
        jobs = server_client(base_url).fine_tuning.jobs.list(limit=limit).data
    table = Table("status", "model", "created")
    table.add_column("id", no_wrap=True)
    table.add_column("fine_tuned_model", no_wrap=True)
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
        table.add_row(job.status, job.model, created, job.id, job.fine_tuned_model or "-")
    _stdout().print(table)


@app.command()
def show(job_id: str, base_url: BaseUrl = None) -> None:
    """One job: status, model, hyperparameters, LoRA settings, perplexities, learning check."""
    with api_errors():
        _print_job(server_client(base_url).fine_tuning.jobs.retrieve(job_id))


@app.command()
def cancel(job_id: str, base_url: BaseUrl = None) -> None:
    """Cancel a job: stop its worker and delete its checkpoints."""
    with api_errors():
        job = server_client(base_url).fine_tuning.jobs.cancel(job_id)
    _stdout().print(f"{job.id} {job.status}")


@app.command()
def pause(job_id: str, base_url: BaseUrl = None) -> None:
    """Pause a job at its next step (it checkpoints first)."""
    with api_errors():
        job = server_client(base_url).fine_tuning.jobs.pause(job_id)
    _stdout().print(f"{job.id} {job.status}")


@app.command()
def resume(job_id: str, base_url: BaseUrl = None) -> None:
    """Resume a paused job from its last checkpoint."""
    with api_errors():
        job = server_client(base_url).fine_tuning.jobs.resume(job_id)
    _stdout().print(f"{job.id} {job.status}")


@app.command()
def export(
    job_id: str,
    format: Annotated[str, typer.Option("--format", help="adapter, merged or gguf.")] = "adapter",
    output: Annotated[Path | None, typer.Option(help="Directory to write to.")] = None,
    gguf_type: Annotated[str, typer.Option(help="GGUF weights: f16, q8_0 or f32.")] = "f16",
) -> None:
    """Write a finished job's model as a peft adapter, merged safetensors or a GGUF that
    the llama.cpp engine serves; prints the perplexity before and after export."""
    from ember.adapt.gguf_export import GgufType
    from ember.services.fine_tuning_export import ExportFormat, export_job
    from ember.store import Store

    if format not in ("adapter", "merged", "gguf"):
        _stderr().print("[red]Error:[/red] --format must be adapter, merged or gguf.")
        raise typer.Exit(2)
    if gguf_type not in ("f16", "q8_0", "f32"):
        _stderr().print("[red]Error:[/red] --gguf-type must be f16, q8_0 or f32.")
        raise typer.Exit(2)
    with api_errors():
        settings = load_settings()
        store = Store(settings.database)
        try:
            with _stderr().status(f"Exporting {job_id} as {format}"):
                result = export_job(
                    settings,
                    store,
                    job_id,
                    cast(ExportFormat, format),
                    output,
                    gguf_type=cast(GgufType, gguf_type),
                )
        finally:
            store.close()
    out = _stdout()
    out.print(f"wrote {result.path}")
    if result.model_id:
        out.print(f"registered as {result.model_id}")
    fine, exported = result.perplexity_fine_tuned, result.perplexity_exported
    if fine is not None and exported is not None:
        out.print(f"validation perplexity: fine-tuned {fine:.3f}, exported {exported:.3f}")
