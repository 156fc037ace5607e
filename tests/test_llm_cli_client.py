"""A client nobody here wrote: Simon Willison's `llm` CLI pointed at Ember."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import RunningServer


def test_llm_cli_talks_to_ember(server: RunningServer, tmp_path: Path) -> None:
    llm = shutil.which("llm", path=str(Path(sys.executable).parent))
    assert llm, "the dev install provides the llm CLI"
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: ember-small\n  model_name: gpt-4o-mini\n  api_base: {server.v1}\n"
    )
    env = {
        **os.environ,
        "LLM_USER_PATH": str(tmp_path),
        "LLM_LOAD_PLUGINS": "",  # only llm itself: no third-party plugins
        "OPENAI_API_KEY": "not-needed",
    }
    result = subprocess.run(
        [llm, "-m", "ember-small", "--no-log", "-o", "max_tokens", "12", "Say hello to Ada."],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
