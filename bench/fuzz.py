"""The long fuzz: schemathesis over every operation of ``/openapi.json``, many examples each.

The test command runs the same fuzzer with 30 examples per operation (tests/test_schemathesis.py);
this runs ``--max-examples`` (default 300) through the examples, coverage, fuzzing and
stateful phases, against ``ember serve`` with the ``fake`` engine (no model: the fuzzer
exercises the API's validation and error paths, which is where hostile input lands; the real
models' paths are the soak's, ``bench/soak.py``). The check is schemathesis's
``not_a_server_error``: any 5xx is a failure. Reported, per HTTP method: operations, test
cases sent, failures; and whether the server was alive and its log free of tracebacks.

Run ``python bench/fuzz.py --help``. The exit status is non-zero when a 5xx was found.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

CONFIG = """
preload = ["echo"]
n_threads = 1
max_request_bytes = 1048576

[models.echo]
path = "echo"
engine = "fake"
context_length = 512

[aliases]
gpt-4o-mini = "echo"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    args = parser.parse_args()
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if binary is None:
        print("schemathesis is not installed (make install-dev)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ember-fuzz-") as tmp:
        home = Path(tmp)
        (home / "ember.toml").write_text(CONFIG)
        port = _free_port()
        env = {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
        log_path = home / "server.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ember",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                for _ in range(240):
                    try:
                        if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.5)
                started = time.monotonic()
                events = home / "events.ndjson"
                result = subprocess.run(
                    [
                        binary,
                        "run",
                        f"{base}/openapi.json",
                        "--checks",
                        "not_a_server_error",
                        "--max-examples",
                        str(args.max_examples),
                        "--seed",
                        str(args.seed),
                        "--phases",
                        args.phases,
                        "--request-timeout",
                        "60",
                        "--report",
                        "ndjson",
                        "--report-ndjson-path",
                        str(events),
                    ],
                    capture_output=True,
                    text=True,
                    cwd=tmp,
                    env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
                )
                elapsed = time.monotonic() - started
                alive = server.poll() is None
            finally:
                server.terminate()
                server.wait(timeout=60)
        log_text = log_path.read_text(errors="replace")
        cases: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        operations: dict[str, set[str]] = {}
        for line in events.read_text().splitlines() if events.exists() else []:
            event = json.loads(line)
            for kind, body in event.items():
                if kind != "ScenarioFinished" or not isinstance(body, dict):
                    continue
                label = str(body.get("label") or body.get("recorder", {}).get("label", ""))
                method = label.split(" ", 1)[0] or "?"
                operations.setdefault(method, set()).add(label)
                recorder = body.get("recorder", {})
                cases[method] += len(recorder.get("cases", {}))
                failed = [
                    c
                    for checks in recorder.get("checks", {}).values()
                    for c in checks
                    if c.get("status") == "FAILURE"
                ]
                failures[method] += len(failed)
    console = Console()
    table = Table(
        title=f"schemathesis, {args.max_examples} examples per operation, {elapsed:.0f} s"
    )
    for column in ("method", "operations", "test cases", "5xx failures"):
        table.add_column(column)
    for method in sorted(operations):
        table.add_row(
            method, str(len(operations[method])), str(cases[method]), str(failures[method])
        )
    table.add_row(
        "all",
        str(sum(len(v) for v in operations.values())),
        str(sum(cases.values())),
        str(sum(failures.values())),
    )
    console.print(table)
    console.print(
        f"server alive after: {alive}; tracebacks in its log: {log_text.count('Traceback')}"
    )
    console.print(result.stdout[-3000:])
    return 0 if result.returncode == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
