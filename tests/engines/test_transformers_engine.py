"""What only the transformers engine does: loading HF directories, and failing clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ember.engines.transformers_engine import load_transformers_engine
from ember.errors import ModelLoadError
from ember.models.spec import ModelSpec
from ember.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.mark.parametrize("config", [None, "{}"], ids=["missing", "empty-config"])
def test_unloadable_directory_is_a_model_load_error(
    tmp_path: Path, settings: Settings, config: str | None
) -> None:
    path = tmp_path / "model"
    if config is not None:
        path.mkdir()
        (path / "config.json").write_text(config)
    spec = ModelSpec(id="broken", engine="transformers", kind="chat", source="config", path=path)
    with pytest.raises(ModelLoadError):
        load_transformers_engine(spec, settings)
