"""``ember db``: move a home's SQLite database into PostgreSQL, and check the copy.

A thin shell over ``ember.store.transfer`` (the resumable copy) and
``ember.store.transfer_check`` (the comparison). Progress and results go to stdout; errors
are one red line on stderr with exit status 1, as are differences found by the check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from ember.errors import EmberError, InvalidRequestError, NotFoundError
from ember.settings import Settings, load_settings
from ember.store import Store, create_store_engine, database_url
from ember.store.transfer import (
    Progress,
    Transfer,
    check_target_url,
    open_target,
    pending_migrations,
    probe_target,
    shown_url,
    survey,
)
from ember.store.transfer_check import Check, compare

app = typer.Typer(
    help="Move this home's database into PostgreSQL and check the copy.",
    no_args_is_help=True,
)


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    _stderr().print(f"Error: {message}", style="red", markup=False)
    return typer.Exit(1)


def _settings() -> Settings:
    try:
        return load_settings()
    except ValueError as exc:
        raise _fail(f"invalid settings: {exc}") from None


def _source(settings: Settings, target: str) -> Path:
    """The home's SQLite file, refused when missing or when the home already uses ``target``."""
    check_target_url(target)
    if settings.database_url and database_url(settings.database_url) == database_url(target):
        raise InvalidRequestError(
            f"this home already uses {shown_url(target)} (setting database_url): there is"
            " nothing to migrate"
        )
    path = settings.database_path
    if not path.is_file():
        raise NotFoundError(
            f"there is no SQLite database to migrate at {path}: set EMBER_HOME to the home"
            " that holds ember.db"
        )
    return path


def _report(checks: list[Check]) -> bool:
    table = Table(title="Verification")
    for column in ("check", "name", "source (SQLite)", "target (PostgreSQL)", "result"):
        table.add_column(column, overflow="fold")
    for check in checks:
        result = Text("same", style="green") if check.ok else Text("DIFFERS", style="bold red")
        table.add_row(check.kind, Text(check.name), check.source, check.target, result)
    out = _stdout()
    out.print(table)
    for check in checks:
        if check.warning:
            out.print(f"Warning: {check.warning}", style="yellow", markup=False)
    return all(check.ok for check in checks)


@app.command()
def migrate(
    to: Annotated[
        str,
        typer.Option(
            "--to", help="The PostgreSQL database to copy into: postgresql://USER:PW@HOST/DB."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be copied; write nothing.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Rows per transaction.")] = 1000,
) -> None:
    """Copy this home's SQLite database into PostgreSQL, resumably, then verify the copy."""
    settings = _settings()
    try:
        path = _source(settings, to)
        if dry_run:
            _dry_run(path, to)
            return
        ok = _migrate(path, to, batch)
    except EmberError as exc:
        raise _fail(exc.message) from None
    if not ok:
        raise _fail(
            "the copy differs from the source (rows marked DIFFERS above). Nothing in the"
            " source was changed; copy again into a new, empty database"
        )
    _stdout().print(
        f'Migrated and verified. To serve from it, set database_url = "{shown_url(to)}"'
        " (with its password) in ember.toml, or EMBER_DATABASE_URL, and start ember serve;"
        f" {path} is left as it was. Uploaded files' bytes stay under {settings.home}/files"
        " and the guard vault's key in guard_vault.key: give every replica that directory.",
        markup=False,
    )


def _dry_run(path: Path, to: str) -> None:
    out = _stdout()
    engine = create_store_engine(path)
    try:
        found = survey(engine)
    finally:
        engine.dispose()
    has_schema = probe_target(to)
    out.print(f"Source: {path} (SQLite)", markup=False)
    out.print(
        f"Target: {shown_url(to)} (reachable, pgvector available,"
        f" {'Ember tables present' if has_schema else 'no Ember tables yet'})",
        markup=False,
    )
    if found.pending_migrations:
        out.print(
            f"Would first apply {len(found.pending_migrations)} pending migrations to the"
            f" source: {', '.join(found.pending_migrations)}",
            markup=False,
        )
    table = Table(title="Would copy")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for spec, count in found.tables:
        table.add_row(spec.name, str(count))
    for vectors, count in found.vectors:
        table.add_row(f"{vectors.table} {vectors.store_id}", f"{count} vectors")
    out.print(table)
    rows = sum(count for _spec, count in found.tables)
    vectors_total = sum(count for _spec, count in found.vectors)
    for name in found.skipped:
        out.print(f"Would skip virtual table {name} (not Ember's)", markup=False)
    out.print(
        f"Dry run: {len(found.tables)} tables, {rows} rows, {vectors_total} vectors;"
        " nothing was written.",
        markup=False,
    )


def _migrate(path: Path, to: str, batch: int) -> bool:
    out = _stdout()
    engine = create_store_engine(path)
    try:
        with engine.connect() as conn:
            pending_migrations(conn)  # a newer Ember's home: refused before the target is touched
    finally:
        engine.dispose()
    target = open_target(to)
    source: Store | None = None
    try:
        source = Store(path)
        out.print(f"Source: {path} (SQLite)", markup=False)
        out.print(f"Target: {shown_url(to)}", markup=False)

        bar = RichProgress(
            TextColumn("  {task.description:<40}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=out,
            transient=True,
            disable=not out.is_terminal,
        )
        tasks: dict[str, TaskID] = {}

        def report(progress: Progress) -> None:
            if progress.item not in tasks:
                tasks[progress.item] = bar.add_task(progress.item, total=progress.total)
            bar.update(tasks[progress.item], completed=progress.copied)
            if not progress.done:
                return
            bar.remove_task(tasks[progress.item])
            note = ""
            if progress.resumed_from == progress.copied > 0:
                note = " (copied by an earlier run)"
            elif progress.resumed_from:
                note = f" (resumed at {progress.resumed_from})"
            bar.console.print(
                f"  {progress.item:<40} {progress.copied:>9} / {progress.total} copied{note}",
                markup=False,
            )

        transfer = Transfer(
            source, target, source_name=str(path.resolve()), batch=batch, on_progress=report
        )
        with transfer.exclusive():
            resuming = transfer.resuming()
            transfer.prepare()
            out.print("Resuming the copy:" if resuming else "Copying:", markup=False)
            with bar:
                transfer.run()
            out.print("Verifying:", markup=False)
            ok = _report(compare(source, target))
            if ok:
                transfer.finish()
        return ok
    finally:
        if source is not None:
            source.close()
        target.close()


@app.command()
def verify(
    against: Annotated[
        str, typer.Option("--against", help="The PostgreSQL database to compare with.")
    ],
) -> None:
    """Compare this home's SQLite database with a PostgreSQL copy: rows, vectors, audit,
    search."""
    settings = _settings()
    try:
        check_target_url(against)
        path = settings.database_path
        if not path.is_file():
            raise NotFoundError(f"there is no SQLite database at {path}")
        if not probe_target(against):  # verify writes nothing: not even Ember's tables
            raise NotFoundError(
                f"{shown_url(against)} holds no Ember database: nothing to compare with"
            )
        target = open_target(against)
        try:
            source = Store(path)
            try:
                ok = _report(compare(source, target))
            finally:
                source.close()
        finally:
            target.close()
    except EmberError as exc:
        raise _fail(exc.message) from None
    if not ok:
        raise _fail("the databases differ (rows marked DIFFERS above)")
    _stdout().print("The same.", markup=False)
