"""``ember ingest``, ``ember ask`` and ``ember stores``: documents in, cited answers out.

These call the same services as the server, on the same database, so a store filled by
``ember ingest`` is searchable over ``/v1/vector_stores/{id}/search`` and the other way
round. ``ember ingest`` is resumable: run it again after an interruption and it finishes
the files that were in progress, without uploading or embedding anything twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ember.errors import EmberError
from ember.ground.parsers import supported_extensions
from ember.services.container import Services
from ember.settings import load_settings

stores_app = typer.Typer(help="List, show and remove vector stores.", no_args_is_help=True)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@contextmanager
def _services() -> Iterator[Services]:
    services: Services | None = None
    try:
        services = Services.build(load_settings())
        yield services
    except EmberError as exc:
        err_console.print(f"Error: {exc.message}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        if services is not None:
            asyncio.run(services.close())


def _collect(paths: list[Path]) -> list[Path]:
    extensions = set(supported_extensions())
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in extensions
            )
        elif path.is_file():
            found.append(path)
        else:
            raise EmberError(f"No such file or directory: {path}")
    return found


def _attach(services: Services, store_id: str, path: Path) -> str:
    """Upload ``path`` (unless this content and name are already uploaded) and attach it."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    file_id = next(
        (r.id for r in services.files.find_by_sha256(sha) if r.filename == path.name), None
    )
    if file_id is None:
        file_id = services.files.create(path.name, "assistants", data).id
    if services.store.vectors.get_file(store_id, file_id) is None:
        services.vector_stores.add_file(store_id, file_id, attributes={"path": str(path)[:512]})
    return file_id


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    store: Annotated[
        str, typer.Option("--store", help="Vector store name or id (created if new).")
    ],
) -> None:
    """Add documents to a vector store, with a progress bar; resumes after an interruption."""
    with _services() as services:
        files = _collect(paths)
        try:
            found = services.vector_stores.find(store)
        except EmberError:
            found = services.vector_stores.create(name=store)
        store_id = found["id"]
        names = {_attach(services, store_id, path): path.name for path in files}

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("chunks"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            tasks: dict[str, Any] = {}

            def report(_store: str, file_id: str, done: int, total: int) -> None:
                if file_id not in tasks:
                    label = names.get(file_id, file_id)
                    tasks[file_id] = progress.add_task(label, total=total)
                progress.update(tasks[file_id], completed=done, total=total)

            asyncio.run(services.ingestion.run_pending(report))

        table = Table(title=f"{found['name'] or store_id} ({store_id})")
        for column in ("file", "id", "status", "chunks", "note"):
            table.add_column(column)
        failed = 0
        for file_id, name in names.items():
            row = services.store.vectors.get_file(store_id, file_id)
            if row is None:
                continue
            chunks = len(services.store.chunks.positions(store_id, file_id))
            error = row["last_error"] or {}
            failed += row["status"] == "failed"
            table.add_row(name, file_id, row["status"], str(chunks), error.get("message", ""))
        console.print(table)
        if failed:
            err_console.print(f"{failed} file(s) failed; see the note column.", style="yellow")


def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    store: Annotated[list[str], typer.Option("--store", help="Vector store name or id.")],
    model: Annotated[str, typer.Option(help="Chat model that answers.")] = "default",
    extractive: Annotated[
        bool, typer.Option("--extractive", help="Answer only by quoting the sources.")
    ] = False,
) -> None:
    """Answer from vector stores: the answer, then a table of its citations."""
    with _services() as services:
        store_ids = [services.vector_stores.find(name)["id"] for name in store]
        answer = asyncio.run(
            services.grounding.answer(
                question,
                store_ids,
                model=model,
                mode="extractive" if extractive else "generative",
            )
        )
        console.print(answer.text, markup=False)
        if answer.abstained:
            err_console.print(f"(abstained: {answer.reason})", style="yellow")
            return
        table = Table(caption=f"groundedness {answer.groundedness:.2f}")
        for column in ("#", "file", "page", "quote"):
            table.add_column(column)
        for citation in answer.citations:
            table.add_row(
                f"[{citation.number}]",
                citation.filename,
                str(citation.page or ""),
                citation.quote,
            )
        console.print(table)


@stores_app.command("list")
def stores_list() -> None:
    """List vector stores with their file counts and size."""
    with _services() as services:
        table = Table()
        for column in ("id", "name", "files", "completed", "failed", "bytes", "created"):
            table.add_column(column)
        for item in services.vector_stores.list_stores(limit=100, order="desc", after=None)["data"]:
            counts = item["file_counts"]
            table.add_row(
                item["id"],
                item["name"] or "",
                str(counts["total"]),
                str(counts["completed"]),
                str(counts["failed"]),
                str(item["usage_bytes"]),
                datetime.fromtimestamp(item["created_at"]).isoformat(" ", "seconds"),
            )
        console.print(table)


@stores_app.command("show")
def stores_show(store: Annotated[str, typer.Argument(help="Vector store name or id.")]) -> None:
    """Show a vector store and its files."""
    with _services() as services:
        found = services.vector_stores.find(store)
        console.print(f"{found['id']}  {found['name'] or ''}  status={found['status']}")
        table = Table()
        for column in ("file id", "filename", "status", "bytes", "error"):
            table.add_column(column)
        page = services.vector_stores.list_files(
            found["id"], limit=100, order="asc", after=None, status=None
        )
        for item in page["data"]:
            record = services.store.get_file(item["id"])
            table.add_row(
                item["id"],
                record.filename if record else "(deleted)",
                item["status"],
                str(item["usage_bytes"]),
                (item["last_error"] or {}).get("message", ""),
            )
        console.print(table)


@stores_app.command("rm")
def stores_rm(store: Annotated[str, typer.Argument(help="Vector store name or id.")]) -> None:
    """Remove a vector store with its chunks (uploaded files stay in /v1/files)."""
    with _services() as services:
        found = services.vector_stores.find(store)
        services.vector_stores.delete(found["id"])
        console.print(f"Removed {found['id']} ({found['name'] or ''}).")
