"""The `ember` command end to end, as a user runs it (subprocess, real model)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ember import __version__


def ember(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_N_THREADS": "2"}
    env.pop("EMBER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "ember", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=home,
    )


def test_version(tmp_path: Path) -> None:
    result = ember("--version", home=tmp_path)
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_run_with_prompt_argument_and_stdin(tmp_path: Path) -> None:
    result = ember(
        "run",
        "smollm2-135m-instruct",
        "What is 2+2?",
        "--max-tokens",
        "8",
        "--temperature",
        "0",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    piped = ember(
        "run",
        "smollm2-135m-instruct",
        "--max-tokens",
        "8",
        "--temperature",
        "0",
        home=tmp_path,
        stdin="What is 2+2?",
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == result.stdout  # same prompt, greedy: same answer


def test_run_unknown_model_is_one_clean_line(tmp_path: Path) -> None:
    result = ember("run", "no-such-model", "hi", home=tmp_path)
    assert result.returncode == 1
    assert "no-such-model" in result.stderr and "Traceback" not in result.stderr


def test_chat_repl(tmp_path: Path) -> None:
    result = ember(
        "chat",
        "--model",
        "smollm2-135m-instruct",
        "--max-tokens",
        "6",
        home=tmp_path,
        stdin="Hello!\n/exit\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Chatting with" in result.stdout
