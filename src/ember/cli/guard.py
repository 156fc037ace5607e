"""``ember guard``: scan a file or stdin for PII and list the findings.

Uses the same settings (``guard_recognizers``) and the same ``Analyzer`` as the server.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ember.errors import EmberError
from ember.guard.analyzer import Analyzer
from ember.guard.registry import default_registry
from ember.guard.vault import apply_operator
from ember.settings import load_settings

app = typer.Typer(help="Find personal data (PII) in text.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@app.command()
def scan(
    file: Annotated[str, typer.Argument(help="A text file, or - for standard input.")],
    language: Annotated[str, typer.Option(help="zh, en or auto.")] = "auto",
    entity: Annotated[
        list[str] | None, typer.Option(help="Only this entity type (repeatable).")
    ] = None,
) -> None:
    """List the PII found in FILE (or stdin): type, text, position, score."""
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        analyzer = Analyzer(enabled=load_settings().guard_recognizers)
        spans = analyzer.analyze(text, language, entity)
    except EmberError as exc:
        err_console.print(f"[red]Error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    if not spans:
        console.print("No PII found.")
        return
    table = Table("type", "text", "position", "score")
    for span in spans:
        table.add_row(span.type, span.text, f"{span.start}-{span.end}", f"{span.score:.2f}")
    console.print(table)


@app.command()
def redact(
    file: Annotated[str, typer.Argument(help="A text file, or - for standard input.")],
    operator: Annotated[
        str, typer.Option(help="replace (typed placeholders), mask, hash or drop.")
    ] = "replace",
    language: Annotated[str, typer.Option(help="zh, en or auto.")] = "auto",
) -> None:
    """Print FILE (or stdin) with its PII replaced."""
    if operator not in ("replace", "mask", "hash", "drop"):
        err_console.print(f"[red]Error:[/red] unknown operator {operator!r}.", highlight=False)
        raise typer.Exit(2)
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        spans = Analyzer(enabled=load_settings().guard_recognizers).analyze(text, language)
    except EmberError as exc:
        err_console.print(f"[red]Error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    sys.stdout.write(apply_operator(text, spans, operator))  # type: ignore[arg-type]


@app.command()
def recognizers() -> None:
    """List the PII recognizers and whether each is on."""
    enabled = load_settings().guard_recognizers
    for name in default_registry.names():
        on = enabled == ["all"] or name in enabled
        console.print(f"{name}\t{'on' if on else 'off'}", highlight=False)
