"""Property-based fuzzing of the implemented endpoints from /openapi.json: no 5xx, ever."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import RunningServer


def test_fuzzed_requests_never_get_a_server_error(server: RunningServer, tmp_path: Path) -> None:
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert binary, "the dev install provides schemathesis"
    result = subprocess.run(
        [
            binary,
            "run",
            f"{server.base_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
            "--seed",
            "20261123",
            "--request-timeout",
            "120",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
