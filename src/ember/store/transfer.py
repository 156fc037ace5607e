"""Copying a home's SQLite database into PostgreSQL (``ember db migrate``).

What is copied is read from the SQLite schema, not from a list kept here: every table but
``_migrations`` (the target runs the same migrations itself), SQLite's own tables and the
vector tables, in an order where a table comes after the tables its foreign keys point at.
Rows keep their primary keys; tables are read in batches in primary-key order (keyset
pagination), and PostgreSQL's identity sequences are moved past the copied keys afterwards.
The ``chunk_vectors_<dim>`` tables go through ``ember.store.vector_index`` (sqlite-vec in,
pgvector out), a vector store at a time, in chunk-id order.

Resuming: each batch is inserted in the same transaction that records how far its table
got in ``_ember_transfer`` on the target (the last key copied, the rows copied, done). A copy
killed at any point (even ``kill -9``) leaves whole batches and a position that matches
them, so running it again continues after that key and duplicates nothing. The progress
table also names the source, so a partial copy of one home is never continued from another;
it is dropped once the copy has been verified (``ember.store.transfer_check``). One copy at
a time: the copying process holds an advisory lock on the target.

A target without a progress table must hold no Ember rows: ``migrate`` fills an empty
database, it never merges two homes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from ember.errors import ConflictError, InvalidRequestError, ServiceUnavailableError
from ember.store.chunks import ChunkTables
from ember.store.database import Store, create_store_engine, database_url
from ember.store.migrations import MIGRATIONS
from ember.store.vector_index import SqliteVecIndex, vector_table

PROGRESS_TABLE = "_ember_transfer"
_SOURCE_ITEM = "source"
# Any constant (not the migrations' lock): the advisory lock one copying process holds.
TRANSFER_LOCK = 0x656D6265725F74


@dataclass(frozen=True)
class TableSpec:
    """One table to copy: its columns in order and its primary key."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    references: frozenset[str]


@dataclass(frozen=True)
class VectorSpec:
    """One vector store's vectors in one ``chunk_vectors_<dim>`` table."""

    table: str
    dimensions: int
    store_id: str

    @property
    def item(self) -> str:
        return f"vectors:{self.table}:{self.store_id}"


@dataclass(frozen=True)
class Survey:
    """What a source holds: its tables with row counts, its vectors with counts, the
    migrations it still needs, and the virtual tables that are not copied."""

    tables: list[tuple[TableSpec, int]]
    vectors: list[tuple[VectorSpec, int]]
    pending_migrations: list[str]
    skipped: list[str]


@dataclass(frozen=True)
class Progress:
    """How far one item (a table or a store's vectors) got: reported after each batch."""

    item: str
    copied: int
    total: int
    resumed_from: int
    done: bool


ProgressCallback = Callable[[Progress], None]


def shown_url(url: str) -> str:
    """A database URL fit to print: its password hidden."""
    try:
        return make_url(url if "://" in url else database_url(url)).render_as_string(
            hide_password=True
        )
    except (ArgumentError, ValueError):
        return url


def _reason(exc: DBAPIError) -> str:
    lines = str(exc.orig).strip().splitlines()
    return lines[0] if lines else type(exc.orig).__name__


def check_target_url(url: str) -> str:
    """The SQLAlchemy URL of a PostgreSQL target; anything else is refused."""
    try:
        parsed = make_url(database_url(url))
    except (ArgumentError, ValueError) as exc:
        raise InvalidRequestError(
            "the target is not a database URL (a password in it is not repeated here): give"
            " postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
        ) from exc
    if "://" not in url or parsed.get_backend_name() != "postgresql":
        raise InvalidRequestError(
            f"the target must be a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DBNAME),"
            f" not {shown_url(url)!r}"
        )
    return parsed.render_as_string(hide_password=False)


def probe_target(url: str) -> bool:
    """Connect to the target; whether it already holds Ember tables. Raises a clear error
    when it cannot be reached or lacks pgvector. Writes nothing."""
    try:
        # A host that drops packets would hold the probe for minutes: give up after 10 s.
        probe_url = make_url(check_target_url(url))
        if "connect_timeout" not in probe_url.query:
            probe_url = probe_url.update_query_dict({"connect_timeout": "10"})
        engine = create_store_engine(probe_url.render_as_string(hide_password=False))
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise InvalidRequestError(f"{shown_url(url)!r} is not a usable database URL") from exc
    try:
        with engine.connect() as conn:
            vector = conn.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).first()
            tables = inspect(conn).get_table_names()
    except DBAPIError as exc:
        raise ServiceUnavailableError(
            f"cannot connect to {shown_url(url)}: {_reason(exc)}. Check the host, port, user,"
            " password and database name in the URL and that the server is running (create the"
            " database first: CREATE DATABASE name)"
        ) from exc
    finally:
        engine.dispose()
    if vector is None:
        raise ServiceUnavailableError(
            f"{shown_url(url)} has no pgvector extension: install pgvector on that PostgreSQL"
            " server (https://github.com/pgvector/pgvector), then run this again"
        )
    return "_migrations" in tables


def open_target(url: str) -> Store:
    """The target as a :class:`Store`: reachable, with pgvector, its schema migrated."""
    probe_target(url)
    try:
        return Store(check_target_url(url))
    except DBAPIError as exc:
        raise ServiceUnavailableError(
            f"preparing Ember's schema in {shown_url(url)} failed: {_reason(exc)}. The user"
            " needs the right to create tables and the vector extension (CREATE EXTENSION"
            " vector, once, as a superuser)"
        ) from exc


# -- what the source holds ----------------------------------------------------------------


def _quote(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def source_tables(conn: Connection) -> tuple[list[TableSpec], list[str]]:
    """The SQLite tables to copy, referenced tables first, and the virtual tables skipped."""
    rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all()
    virtual = {name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL")}
    vector_tables = set(SqliteVecIndex().tables(conn))
    specs: dict[str, TableSpec] = {}
    for name, _sql in rows:
        if (
            name in virtual
            or name in ("_migrations", PROGRESS_TABLE)
            or name.startswith("sqlite_")
            # a virtual table's shadow tables: chunk_vectors_384_chunks, _rowids, _info, ...
            or any(name.startswith(f"{v}_") for v in virtual)
        ):
            continue
        quoted = _quote(conn, name)
        info = conn.execute(text(f"PRAGMA table_info({quoted})")).all()
        key = tuple(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        if not key:
            raise ConflictError(f"table {name} has no primary key: it cannot be copied by key")
        references = {r[2] for r in conn.execute(text(f"PRAGMA foreign_key_list({quoted})"))}
        specs[name] = TableSpec(
            name, tuple(r[1] for r in info), key, frozenset(references - {name})
        )
    skipped = sorted(virtual - vector_tables)
    return _referenced_first(specs), skipped


def _referenced_first(specs: dict[str, TableSpec]) -> list[TableSpec]:
    ordered: list[TableSpec] = []
    placed: set[str] = set()
    waiting = sorted(specs)
    while waiting:
        ready = [n for n in waiting if specs[n].references & specs.keys() <= placed]
        if not ready:  # a cycle of foreign keys: keep the rest in name order
            ready = waiting
        for name in ready:
            ordered.append(specs[name])
            placed.add(name)
        waiting = [n for n in waiting if n not in placed]
    return ordered


def source_vectors(chunks: ChunkTables) -> list[tuple[VectorSpec, int]]:
    """Each vector store's vectors per vector table, with their count."""
    found = []
    for store_id, dimensions in chunks.store_dimensions():
        ids, _vectors = chunks.store_vectors(store_id, dimensions)
        if len(ids):
            found.append((VectorSpec(vector_table(dimensions), dimensions, store_id), len(ids)))
    return found


def count_rows(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {_quote(conn, table)}")).scalar_one())


def pending_migrations(conn: Connection) -> list[str]:
    """The migrations this version of Ember has and the source lacks; refuses a source
    migrated by a newer Ember (its tables may have columns this version cannot copy)."""
    applied = set(conn.execute(text("SELECT name FROM _migrations")).scalars())
    known = [m.__name__ for m in MIGRATIONS]
    unknown = sorted(applied - set(known))
    if unknown:
        raise ConflictError(
            f"this home was last used by a newer Ember (its migrations {', '.join(unknown)}"
            " are unknown here): upgrade Ember, then migrate"
        )
    return [name for name in known if name not in applied]


def survey(engine: Engine) -> Survey:
    """What the SQLite database behind ``engine`` holds; reads only."""
    with engine.connect() as conn:
        pending = pending_migrations(conn)
        tables, skipped = source_tables(conn)
        counts = [(spec, count_rows(conn, spec.name)) for spec in tables]
    return Survey(counts, source_vectors(ChunkTables(engine)), pending, skipped)


# -- the copy -----------------------------------------------------------------------------


class Transfer:
    """Copies one SQLite store into one PostgreSQL store, resumably (see the module doc)."""

    def __init__(
        self,
        source: Store,
        target: Store,
        *,
        source_name: str,
        batch: int = 1000,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.source_name = source_name
        self.batch = max(1, int(batch))
        self.on_progress = on_progress or (lambda _progress: None)
        with source.engine.connect() as conn:
            pending_migrations(conn)
            self.tables, self.skipped = source_tables(conn)
        self.vectors = [spec for spec, _count in source_vectors(source.chunks)]

    # -- the progress table ---------------------------------------------------------------

    def _progress_exists(self) -> bool:
        return PROGRESS_TABLE in inspect(self.target.engine).get_table_names()

    def _positions(self) -> dict[str, tuple[Any, int, bool]]:
        with self.target.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT item, position, copied, done FROM {PROGRESS_TABLE}")
            ).all()
        return {r[0]: (json.loads(r[1]) if r[1] else None, int(r[2]), bool(r[3])) for r in rows}

    def _record(self, conn: Connection, item: str, position: Any, copied: int, done: bool) -> None:
        conn.execute(
            text(
                f"INSERT INTO {PROGRESS_TABLE} (item, position, copied, done)"
                " VALUES (:item, :position, :copied, :done) ON CONFLICT (item) DO UPDATE SET"
                " position = excluded.position, copied = excluded.copied, done = excluded.done"
            ),
            {"item": item, "position": json.dumps(position), "copied": copied, "done": done},
        )

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the target for this copy: a second ``migrate`` into it is refused, not raced."""
        with self.target.engine.connect() as lock:
            held = lock.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": TRANSFER_LOCK}
            ).scalar()
            lock.commit()
            if not held:
                raise ConflictError(
                    "another `ember db migrate` is copying into this database now: let it"
                    " finish (or stop it and run this again to resume)"
                )
            try:
                yield
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": TRANSFER_LOCK})
                lock.commit()

    def resuming(self) -> bool:
        """Whether the target holds a partial copy of this source (to continue)."""
        return self._progress_exists()

    def prepare(self) -> None:
        """Check the target may receive this copy; start its progress table if new."""
        if self._progress_exists():
            source = self._positions().get(_SOURCE_ITEM)
            named = source[0] if source else None
            if named != self.source_name:
                raise ConflictError(
                    f"the target holds a partial copy of another database ({named}), not of"
                    f" {self.source_name}: finish that one, or copy into an empty database"
                )
            return
        holding = self._target_rows()
        if holding:
            listed = ", ".join(f"{name} ({count} rows)" for name, count in holding[:5])
            raise ConflictError(
                f"the target already holds Ember data: {listed}. migrate copies into an empty"
                " database only: create a new one (CREATE DATABASE ...) and give its URL; to"
                " compare a finished copy with this home, run `ember db verify --against URL`"
            )
        with self.target.engine.begin() as conn:
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (item TEXT PRIMARY KEY,"
                    " position TEXT, copied BIGINT NOT NULL, done BOOLEAN NOT NULL)"
                )
            )
            self._record(conn, _SOURCE_ITEM, self.source_name, 0, True)

    def _target_rows(self) -> list[tuple[str, int]]:
        present = set(inspect(self.target.engine).get_table_names())
        missing = [spec.name for spec in self.tables if spec.name not in present]
        if missing:
            raise ConflictError(
                f"the target has no table {', '.join(missing)} after Ember's migrations: the"
                " source holds tables this version of Ember does not create (a plugin's?)"
            )
        with self.target.engine.connect() as conn:
            for spec in self.tables:
                columns = {c["name"] for c in inspect(conn).get_columns(spec.name)}
                if set(spec.columns) - columns:
                    raise ConflictError(
                        f"the target's table {spec.name} lacks the columns"
                        f" {', '.join(sorted(set(spec.columns) - columns))} of the source's"
                    )
            counts = [(spec.name, count_rows(conn, spec.name)) for spec in self.tables]
            counts += [(t, count_rows(conn, t)) for t in self.target.chunks.index.tables(conn)]
        return [(name, count) for name, count in counts if count]

    def finish(self) -> None:
        """Forget the progress once the copy is verified: the target is a plain store now."""
        with self.target.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {PROGRESS_TABLE}"))

    # -- copying ----------------------------------------------------------------------------

    def run(self) -> None:
        """Copy every table, then every store's vectors; skip what a previous run finished."""
        positions = self._positions()
        for spec in self.tables:
            self._copy_table(spec, positions.get(f"table:{spec.name}"))
        for vectors in self.vectors:
            self._copy_vectors(vectors, positions.get(vectors.item))

    def _copy_table(self, spec: TableSpec, state: tuple[Any, int, bool] | None) -> None:
        item = f"table:{spec.name}"
        position, copied, done = state or (None, 0, False)
        with self.source.engine.connect() as conn:
            total = count_rows(conn, spec.name)
        resumed_from = copied
        if done:
            self.on_progress(Progress(spec.name, copied, total, resumed_from, True))
            return
        with self.target.engine.connect() as conn:
            insert = text(
                f"INSERT INTO {_quote(conn, spec.name)}"
                f" ({', '.join(_quote(conn, c) for c in spec.columns)})"
                f" VALUES ({', '.join(f':p{i}' for i in range(len(spec.columns)))})"
            )
        key_at = [spec.columns.index(k) for k in spec.key]
        for rows in self._batches(spec, position):
            position = list(rows[-1][i] for i in key_at)
            copied += len(rows)
            with self.target.engine.begin() as conn:
                try:
                    conn.execute(insert, [{f"p{i}": v for i, v in enumerate(r)} for r in rows])
                except DBAPIError as exc:
                    first = [rows[0][i] for i in key_at]
                    raise ConflictError(
                        f"copying {spec.name} failed in the batch from key {first}: {_reason(exc)}"
                    ) from exc
                self._record(conn, item, position, copied, False)
            self.on_progress(Progress(spec.name, copied, total, resumed_from, False))
        with self.target.engine.begin() as conn:
            _reset_identities(conn, spec.name)
            self._record(conn, item, position, copied, True)
        self.on_progress(Progress(spec.name, copied, total, resumed_from, True))

    def _batches(self, spec: TableSpec, after: Sequence[Any] | None) -> Iterator[list[Any]]:
        with self.source.engine.connect() as conn:
            columns = ", ".join(_quote(conn, c) for c in spec.columns)
            key = ", ".join(_quote(conn, k) for k in spec.key)
            table = _quote(conn, spec.name)
        marks = ", ".join(f":k{i}" for i in range(len(spec.key)))
        key_at = [spec.columns.index(k) for k in spec.key]
        while True:
            where = f" WHERE ({key}) > ({marks})" if after is not None else ""
            params = {f"k{i}": v for i, v in enumerate(after or [])}
            with self.source.engine.connect() as conn:
                rows = conn.execute(
                    text(f"SELECT {columns} FROM {table}{where} ORDER BY {key} LIMIT {self.batch}"),
                    params,
                ).all()
            if not rows:
                return
            yield [tuple(r) for r in rows]
            after = [rows[-1][i] for i in key_at]

    def _copy_vectors(self, spec: VectorSpec, state: tuple[Any, int, bool] | None) -> None:
        name = f"{spec.table} {spec.store_id}"
        position, copied, done = state or (None, 0, False)
        ids, vectors = self.source.chunks.store_vectors(spec.store_id, spec.dimensions)
        resumed_from = copied
        if done:
            self.on_progress(Progress(name, copied, len(ids), resumed_from, True))
            return
        index = self.target.chunks.index
        with self.target.engine.begin() as conn:
            index.create(conn, spec.dimensions)
        start = 0 if position is None else int((ids <= int(position)).sum())
        for begin in range(start, len(ids), self.batch):
            end = min(begin + self.batch, len(ids))
            with self.target.engine.begin() as conn:
                rows = zip((int(i) for i in ids[begin:end]), vectors[begin:end], strict=True)
                index.insert(conn, spec.table, spec.store_id, list(rows))
                copied += end - begin
                position = int(ids[end - 1])
                self._record(conn, spec.item, position, copied, False)
            self.on_progress(Progress(name, copied, len(ids), resumed_from, False))
        with self.target.engine.begin() as conn:
            self._record(conn, spec.item, position, copied, True)
        self.on_progress(Progress(name, copied, len(ids), resumed_from, True))


def _reset_identities(conn: Connection, table: str) -> None:
    """Move PostgreSQL's identity sequences past the copied keys, so new rows get new ones."""
    columns = conn.execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = :t AND is_identity = 'YES'"
        ),
        {"t": table},
    ).scalars()
    for column in list(columns):
        quoted = _quote(conn, column)
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:t, :c),"
                f" COALESCE(MAX({quoted}), 0) + 1, false) FROM {_quote(conn, table)}"
            ),
            {"t": _quote(conn, table), "c": column},
        )
