"""``ember models``: list, show, pull and remove models.

A thin shell: the registry (``ember.models.registry``) says what exists and the hub module
(``ember.models.hub``) pulls and removes. Every :class:`~ember.errors.EmberError` becomes one
red line on stderr and exit code 1, never a traceback. Tables and results go to stdout;
progress bars and errors to stderr, so ``ember models list > file`` stays clean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from ember.errors import EmberError, ModelNotFoundError
from ember.models.hub import LocalDetails, local_details, pull_model, remove_model
from ember.models.registry import ModelRegistry
from ember.models.spec import ModelSpec
from ember.settings import Settings, load_settings
from ember.store import Store

app = typer.Typer(
    help="List, inspect, pull (from a Hugging Face-compatible hub) and remove models.",
    no_args_is_help=True,
)


def _stdout() -> Console:
    # Built per command, not at import: a Console reads COLUMNS when it is created.
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def _services() -> Iterator[tuple[Settings, Store]]:
    """Settings and store for one command; an EmberError ends it with one red line."""
    store: Store | None = None
    try:
        settings = load_settings()
        store = Store(settings.database)
        yield settings, store
    except EmberError as exc:
        _stderr().print(f"Error: {exc.message}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        if store is not None:
            store.close()


def _size(size_bytes: int) -> str:
    return decimal(size_bytes) if size_bytes else "-"


def _aliases_by_model(registry: ModelRegistry) -> tuple[dict[str, list[str]], list[str]]:
    """Aliases grouped by the model they end at, and the aliases that end nowhere."""
    by_model: dict[str, list[str]] = defaultdict(list)
    dangling: list[str] = []
    for alias, target in sorted(registry.aliases().items()):
        try:
            model_id = registry.canonical_id(alias)
        except ModelNotFoundError:
            dangling.append(f"'{alias}' points to '{target}', which does not exist")
            continue
        if model_id != alias:  # a model id shadows an alias of the same name
            by_model[model_id].append(alias)
    return by_model, dangling


@app.command("list")
def list_models() -> None:
    """List every model Ember can serve, with the aliases that point to it."""
    with _services() as (settings, store):
        registry = ModelRegistry(settings, store)
        aliases, dangling = _aliases_by_model(registry)
        table = Table(title="Models")
        table.add_column("id", overflow="fold", style="bold")
        for column in ("engine", "kind", "source"):
            table.add_column(column)
        table.add_column("size", justify="right")
        table.add_column("aliases", overflow="fold")
        for spec in registry.list():
            cells = (spec.id, spec.engine, spec.kind, spec.source, _size(spec.size_bytes))
            # Text, not markup: ids and paths are the user's, and may hold square brackets.
            table.add_row(*map(Text, (*cells, ", ".join(aliases.get(spec.id, [])))))
        _stdout().print(table)
        for line in dangling:
            _stderr().print(f"Note: alias {line}.", style="yellow", markup=False)


@app.command()
def show(
    model: Annotated[str, typer.Argument(help="A model id or an alias.")],
) -> None:
    """Show one model: where its files are, its engine, context length and licence."""
    with _services() as (settings, store):
        registry = ModelRegistry(settings, store)
        spec = registry.resolve(model)
        aliases, _ = _aliases_by_model(registry)
        details = local_details(spec.path) if spec.path is not None else LocalDetails()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        for label, value in _show_rows(model, spec, details, aliases.get(spec.id, []), store):
            grid.add_row(label, Text(value))
        _stdout().print(grid)


def _show_rows(
    name: str, spec: ModelSpec, details: LocalDetails, aliases: list[str], store: Store
) -> list[tuple[str, str]]:
    rows = [("id", spec.id)]
    if name != spec.id:
        rows.append(("resolved from", name))
    source: str = spec.source
    record = store.get_model(spec.id) if spec.source == "hub" else None
    if record is not None:
        source = f"hub: {record.source} @ {record.revision}"
    context = spec.context_length or details.context_length
    rows += [
        ("engine", spec.engine),
        ("kind", spec.kind),
        ("source", source),
        ("description", spec.description or "-"),
        ("path", str(spec.path) if spec.path else "inside an installed package"),
        *([("gguf file", spec.gguf_file)] if spec.gguf_file else []),
        ("context length", f"{context:,} tokens" if context else "unknown"),
        ("licence", spec.licence or details.licence or "unknown"),
        ("size", _size(spec.size_bytes)),
        ("aliases", ", ".join(aliases) or "-"),
    ]
    if record is not None:
        rows.append(("files", ", ".join(str(f["path"]) for f in record.files)))
    return rows


class _ProgressOnFirstTask(Progress):
    """A progress display that appears with its first bar, so an early error stays one line."""

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        self.start()
        return super().add_task(*args, **kwargs)

    def stop(self) -> None:
        if self.live.is_started:
            super().stop()


@app.command()
def pull(
    repo: Annotated[str, typer.Argument(help="The hub repo, as owner/name.")],
    file: Annotated[
        list[str] | None,
        typer.Option(
            "--file",
            "-f",
            help="The .gguf file to pull and serve with llama.cpp (needed when the repo has "
            "several). Repeat it to pull only the named files of a transformers model.",
        ),
    ] = None,
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="Branch, tag or commit to pull.")
    ] = "main",
    model_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Id to serve the model under. Default: the GGUF file's name, or the repo's "
            "name, lowercased.",
        ),
    ] = None,
) -> None:
    """Download a model from the hub (EMBER_HUB_URL), verify it and register it.

    Without --file, a repo with one GGUF file gives that file (llama.cpp); a repo with
    config.json and safetensors gives a transformers model, or a sentence-transformers
    embedding model when it has modules.json. An interrupted pull resumes where it stopped.
    """
    with _services() as (settings, store):
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        progress = _ProgressOnFirstTask(*columns, console=_stderr())
        try:
            record = pull_model(
                repo,
                settings=settings,
                store=store,
                files=file or None,
                revision=revision,
                model_id=model_id,
                progress=progress,
            )
        except KeyboardInterrupt:
            progress.stop()  # before the message, so the bar does not overwrite it
            _stderr().print("Interrupted: run the same pull again to resume.", style="yellow")
            raise typer.Exit(130) from None
        finally:
            progress.stop()
        _stdout().print(
            f"Pulled {repo} @ {escape(revision)} as [bold]{escape(record.id)}[/bold] "
            f"({record.engine}, {record.kind}, {_size(record.size_bytes)}). Use it as "
            f'model="{escape(record.id)}".',
            soft_wrap=True,
        )


@app.command("rm")
def remove(
    model_id: Annotated[str, typer.Argument(help="The id of a pulled model.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a pulled model: its row and the files no other model uses."""
    with _services() as (settings, store):
        record = store.get_model(model_id)
        if record is not None and not yes:
            typer.confirm(
                f"Remove '{model_id}' ({record.source} @ {record.revision}, "
                f"{_size(record.size_bytes)})?",
                abort=True,
            )
        remove_model(model_id, settings, store)  # refuses embedded and unknown ids itself
        _stdout().print(f"Removed '{model_id}'.", markup=False)
