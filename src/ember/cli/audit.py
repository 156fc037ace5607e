"""``ember audit``: verify, tail and export the tamper-evident audit log.

A thin shell over the store's audit functions (``ember.store.audit`` explains the chain).
Results go to stdout; errors and a broken chain to stderr with exit status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ember.errors import EmberError
from ember.settings import load_settings
from ember.store import Store
from ember.store.audit import canonical_json

app = typer.Typer(
    help="Check, show and export the tamper-evident audit log of requests.",
    no_args_is_help=True,
)


class ExportFormat(StrEnum):
    jsonl = "jsonl"


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def _store() -> Iterator[Store]:
    """The store for one command; an EmberError ends it with one red line."""
    store: Store | None = None
    try:
        store = Store(load_settings().database)
        yield store
    except EmberError as exc:
        _stderr().print(f"Error: {exc.message}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        if store is not None:
            store.close()


@app.command()
def verify() -> None:
    """Recompute the hash chain; name the first record that was edited, deleted or moved."""
    with _store() as store:
        result = store.verify_audit()
    if not result.ok:
        _stderr().print(
            f"Audit log broken at record {result.first_bad_seq}: {result.reason}. "
            f"{result.checked} records before it verified.",
            style="red",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    _stdout().print(f"OK, {result.checked} records; head hash {result.head_hash}", markup=False)


@app.command()
def tail(
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many records.")] = 20,
) -> None:
    """Show the newest records of the audit log."""
    with _store() as store:
        records = store.tail_audit(count)
    table = Table(title="Audit log")
    table.add_column("seq", justify="right", style="bold")
    for column in ("time", "request", "endpoint", "model", "status", "verdicts", "hash"):
        table.add_column(column, overflow="fold")
    for record in records:
        when = datetime.fromtimestamp(record.created_at).isoformat(timespec="seconds")
        cells = (
            str(record.seq),
            when,
            record.request_id,
            record.endpoint,
            record.model,
            record.status,
            record.verdicts,
            record.hash[:16],
        )
        table.add_row(*map(Text, cells))  # Text, not markup: values are the clients'
    _stdout().print(table)


@app.command()
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; stdout if omitted.")
    ] = None,
    format: Annotated[
        ExportFormat, typer.Option("--format", help="Output format.")
    ] = ExportFormat.jsonl,
) -> None:
    """Write every record, as stored and hashed, one JSON object per line."""
    with _store() as store:
        target = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            for record in store.iter_audit():
                target.write(canonical_json(record.to_dict()) + "\n")
        finally:
            if output:
                target.close()
