"""``ember doctor``: is this install able to serve, and if not, what command fixes it.

Each check is a small function returning a :class:`Check` (a name, ok or not, what was
found, and the exact command that fixes a problem). A check that is ok but still carries a
fix is a warning (say, more threads than CPUs). :func:`run_checks` runs them all;
:func:`startup_checks` runs the cheap ones (well under a second) that ``ember serve`` needs to
pass before it starts, so a broken install is refused with its fix instead of failing on the
first request.

What is checked: the CPU's instruction sets; the llama.cpp build (the record
``scripts/install.sh`` leaves in the virtual environment, the library's own report, whether
AMX is compiled in and granted, whether ``scripts/llama_cpp_build.py`` would choose the same
build now); threads; installed versions against the lock; each embedded model's files
against their package's RECORD hashes (and the joined default model against its sha256);
the database (``PRAGMA integrity_check``) and the audit chain; and one short greedy decode
per embedded llama.cpp chat model.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.metadata
import shlex
import sys
import time
from pathlib import Path

import sqlean
from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ember.core.types import SamplingParams
from ember.engines.base import TextEngine
from ember.engines.manager import ModelManager
from ember.errors import EmbeddedModelError, EmberError
from ember.models import embedded
from ember.models.spec import ModelSpec
from ember.services.doctor_build import (
    check_cpu,
    check_llama_build,
    check_llama_build_key,
    check_packages,
    check_threads,
    locked_versions,
    normalize,
)
from ember.services.doctor_check import Check, reinstall_command
from ember.settings import Settings
from ember.store import Store, create_store_engine, database_url

# -- embedded models -----------------------------------------------------------------------


def pip_reinstall(distribution: str) -> str:
    """The command that puts back one distribution (at its installed or locked version)."""
    try:
        version: str | None = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = locked_versions().get(normalize(distribution))
    pinned = f"{distribution}=={version}" if version else distribution
    return f"{sys.executable} -m pip install --force-reinstall --no-deps {pinned}"


def _sha256(path: Path) -> bytes:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").digest()


def _record_check(distribution: importlib.metadata.Distribution, path: Path) -> tuple[int, int]:
    """Files of ``distribution`` at or under ``path`` checked against its RECORD hashes:
    (files, bytes); EmbeddedModelError names the first that differs."""
    target, files, size = path.resolve(), 0, 0
    for entry in distribution.files or []:
        if entry.hash is None or entry.hash.mode != "sha256":
            continue
        file = Path(str(entry.locate())).resolve()
        if file != target and target not in file.parents:
            continue
        digest = _sha256(file) if file.is_file() else b""
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != entry.hash.value:
            raise EmbeddedModelError(f"'{entry}' in '{distribution.name}' is damaged or missing")
        files, size = files + 1, size + file.stat().st_size
    return files, size


def _owner(path: Path) -> importlib.metadata.Distribution | None:
    """The installed distribution whose files include ``path`` (named like a parent folder)."""
    target = path.resolve()
    for folder in (path, *path.parents):
        if not folder.name:
            continue
        try:
            dist = importlib.metadata.distribution(folder.name)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
        located = (Path(str(entry.locate())).resolve() for entry in dist.files or [])
        if any(file == target or target in file.parents for file in located):
            return dist
    return None


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _files(count: int, size: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}, {_mb(size)}"


def check_package_file(
    name: str, distribution: str, relative: str, *, verify: bool = True
) -> Check:
    """A file (or folder) of an installed distribution: present and, with ``verify``, as
    its RECORD hashed it."""
    try:
        path = embedded.package_file(distribution, relative)
        if not verify:
            return Check(name, True, f"{path} present")
        files, size = _record_check(importlib.metadata.distribution(distribution), path)
    except EmbeddedModelError as exc:
        return Check(name, False, exc.message, pip_reinstall(distribution))
    return Check(name, True, f"{distribution}: {_files(files, size)}, sha256 verified")


def _check_joined_default(spec: ModelSpec, settings: Settings, verify: bool) -> Check:
    """The default model: its six chunk packages and the verified file joined from them."""
    name = f"model {spec.id}"
    for distribution, relative in embedded.QWEN_CHUNKS:
        chunk = check_package_file(name, distribution, relative, verify=verify)
        if not chunk.ok:
            return chunk
    if not verify:
        return Check(name, True, f"{len(embedded.QWEN_CHUNKS)} chunk packages present")
    try:
        target = embedded.join_qwen_chunks(settings)  # joined and verified once, then reused
    except EmbeddedModelError as exc:
        return Check(name, False, exc.message, reinstall_command())
    if _sha256(target).hex() != embedded.QWEN_SHA256:  # reuse trusts size and stamps only
        marker = target.with_suffix(".verified.json")
        return Check(
            name,
            False,
            f"{target} is damaged (sha256 differs); once removed it is joined again from the "
            "packages",
            f"rm -f {shlex.quote(str(target))} {shlex.quote(str(marker))}",
        )
    return Check(
        name,
        True,
        f"{target}: {_mb(target.stat().st_size)}, sha256 verified (and its "
        f"{len(embedded.QWEN_CHUNKS)} chunk packages)",
    )


def check_embedded_model(spec: ModelSpec, settings: Settings, *, verify: bool = True) -> Check:
    """An embedded model's files: present, and with ``verify`` their checksums."""
    if spec.id == embedded.QWEN_ID:
        return _check_joined_default(spec, settings, verify)
    name = f"model {spec.id}"
    try:
        path = spec.resolve_path(settings)
    except EmbeddedModelError as exc:
        return Check(name, False, exc.message, reinstall_command())
    if not verify:
        return Check(name, True, f"{path} present")
    owner = _owner(path)
    if owner is None:
        return Check(name, True, f"{path} present (no package RECORD to verify it against)")
    try:
        files, size = _record_check(owner, path)
    except EmbeddedModelError as exc:
        return Check(name, False, exc.message, pip_reinstall(owner.name))
    return Check(name, True, f"{owner.name}: {_files(files, size)}, sha256 verified")


# -- the store -----------------------------------------------------------------------------


def check_store(settings: Settings, *, thorough: bool = True) -> Check:
    """SQLite's own check of the database (read-only, safe beside a running server), or
    for PostgreSQL that the server answers and Ember's schema is there."""
    if settings.database_url:
        return _check_server_database(settings.database_url)
    path = settings.database_path
    if not path.exists():
        return Check("store", True, f"no database yet at {path} (created at the first start)")
    pragma = "integrity_check" if thorough else "quick_check"
    try:
        connection = sqlean.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in connection.execute(f"PRAGMA {pragma}").fetchall()]
        finally:
            connection.close()
    except sqlean.dbapi2.Error as exc:
        rows = [str(exc)]
    if rows == ["ok"]:
        return Check("store", True, f"{path}: {_mb(path.stat().st_size)}, {pragma} ok")
    aside = settings.home / "damaged"
    return Check(
        "store",
        False,
        f"{path} is damaged ({'; '.join(rows[:3])}); move it aside and Ember starts with a "
        "new database (the old one stays there for recovery)",
        f"mkdir -p {shlex.quote(str(aside))} && mv {shlex.quote(str(path))}* "
        f"{shlex.quote(str(aside))}/",
    )


def _check_server_database(url: str) -> Check:
    fix = "set EMBER_DATABASE_URL (or database_url) to postgresql://user:password@host:port/db"
    try:
        shown = make_url(database_url(url)).render_as_string(hide_password=True)
        if "://" not in url:
            raise ValueError("database_url must be a URL such as postgresql://host/db")
        engine = create_store_engine(url)
    except (ValueError, ArgumentError) as exc:
        return Check("store", False, f"{url!r}: {exc}", fix)
    try:
        try:
            with engine.connect() as conn:
                version = conn.execute(text("SHOW server_version")).scalar()
                vector = conn.execute(
                    text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
                ).first()
                created = conn.execute(text("SELECT to_regclass('_migrations')")).scalar()
                applied = (
                    conn.execute(text("SELECT COUNT(*) FROM _migrations")).scalar()
                    if created
                    else 0
                )
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        return Check(
            "store",
            False,
            f"{shown}: {type(cause).__name__}: {str(cause).strip()}",
            "check EMBER_DATABASE_URL and that the database server is running",
        )
    if vector is None:
        return Check(
            "store",
            False,
            f"{shown}: PostgreSQL {version} has no pgvector extension, which Ember keeps "
            "chunk vectors in",
            "install pgvector on the database server (https://github.com/pgvector/pgvector)",
        )
    return Check("store", True, f"{shown}: PostgreSQL {version}, {applied} migrations applied")


def check_audit(settings: Settings) -> Check | None:
    """The audit log's hash chain (None when there is no database yet)."""
    if not settings.database_url and not settings.database_path.exists():
        return None
    try:
        store = Store(settings.database)
        try:
            result = store.verify_audit()
        finally:
            store.close()
    except SQLAlchemyError as exc:  # the store passed SQLite's check: say what, no fix known
        return Check("audit chain", False, f"cannot be read ({type(exc).__name__}: {exc})")
    if result.ok:
        return Check("audit chain", True, f"{result.checked} records verified")
    return Check(
        "audit chain",
        False,
        f"broken at record {result.first_bad_seq}: {result.reason}; it cannot be repaired, "
        "only restored from a backup of the database",
        "ember audit verify",
    )


# -- decoding ------------------------------------------------------------------------------

_DECODE_PROMPT = "The three primary colours are"
_DECODE_TOKENS = 16


async def _decode(spec: ModelSpec, settings: Settings) -> Check:
    name, manager = f"decode {spec.id}", ModelManager(settings)
    params = SamplingParams(max_tokens=_DECODE_TOKENS, temperature=0.0)

    def greedy(engine: TextEngine) -> tuple[int, float]:
        prompt = engine.tokenize(_DECODE_PROMPT)
        started = time.perf_counter()
        tokens = sum(chunk.tokens for chunk in engine.generate(prompt, params))
        return tokens, time.perf_counter() - started

    try:
        engine = await manager.get(spec)
        if not isinstance(engine, TextEngine):
            return Check(name, False, f"the {spec.engine} engine does not generate text")
        tokens, seconds = await asyncio.to_thread(greedy, engine)
    except EmberError as exc:
        return Check(name, False, exc.message, reinstall_command())
    finally:
        await manager.close()
    if tokens == 0:
        return Check(name, False, "generated no tokens", reinstall_command())
    return Check(name, True, f"{tokens} tokens in {seconds:.2f} s, {tokens / seconds:.1f} tokens/s")


def check_decodes(settings: Settings) -> list[Check]:
    """One short greedy decode per embedded llama.cpp chat model, loaded as the server loads
    it (``engine_isolation`` as configured)."""
    specs = [s for s in embedded.embedded_models() if s.engine == "llamacpp" and s.kind == "chat"]

    async def each() -> list[Check]:
        return [await _decode(spec, settings) for spec in specs]

    return asyncio.run(each())


# -- the lists -----------------------------------------------------------------------------


def startup_checks(settings: Settings) -> list[Check]:
    """What ``ember serve`` checks before it starts: the build, model files present, the
    database (``quick_check``)."""
    checks = [check_llama_build(library=False)]
    checks += [check_embedded_model(s, settings, verify=False) for s in embedded.embedded_models()]
    checks.append(check_store(settings, thorough=False))
    return checks


def run_checks(settings: Settings, *, quick: bool) -> list[Check]:
    """Every check; ``quick`` leaves out the decodes (loading each chat model)."""
    checks = [check_cpu(), check_llama_build()]
    if (key := check_llama_build_key()) is not None:
        checks.append(key)
    checks += [check_threads(settings), check_packages()]
    checks += [check_embedded_model(spec, settings) for spec in embedded.embedded_models()]
    store = check_store(settings)
    checks.append(store)
    if store.ok and (audit := check_audit(settings)) is not None:
        checks.append(audit)
    if not quick:
        checks += check_decodes(settings)
    return checks
