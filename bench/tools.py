"""Tool calls on BFCL with the default model: Ember now, Ember before, and llama-server.

The Berkeley Function-Calling Leaderboard's own data and AST checker (``bfcl-eval``, installed
in a separate venv so that its pins never touch Ember's) score what three servers return for
the same requests, started one at a time on the same GGUF (two llama.cpp processes on this
machine slow each other down):

* ``after``: ``python -m ember serve`` from this checkout;
* ``before``: the same command on the source of ``--base-ref`` (``git archive`` into a
  temporary folder), sharing the same ``EMBER_HOME`` so the model file is the same;
* ``llama-server``: llama.cpp's server (``--jinja``), built from the llama.cpp that
  llama-cpp-python vendors, serving the GGUF that Ember joined.

Each BFCL item becomes one chat request the way BFCL's OpenAI function-calling handler sends
it: the first user turn, its functions as ``tools`` (BFCL types mapped to JSON schema, dots in
names turned into underscores), ``tool_choice: "auto"``, ``temperature`` 0. The calls that
come back are scored with ``bfcl_eval``'s ``ast_checker`` (simple, multiple, parallel,
parallel_multiple, live_simple); an ``irrelevance`` item passes when no call comes back.

A response is *malformed* when a call reached the client in a broken form: a tool call whose
arguments are not a JSON object, or text that carries a call naming one of the request's tools
(a fenced or bare ``{"name": ...}`` object or a ``<tool_call>`` block) that the client would
have to dig out itself.

Run ``python bench/tools.py --help``. The exit status is non-zero only when something broke,
never because a target was missed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
LIVE = ("live_simple",)
NON_LIVE_AST = ("simple_python", "multiple", "parallel", "parallel_multiple")
GGUF = "models/embedded/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
# BFCL's type names mapped to JSON schema, as its OpenAI handler maps them (GORILLA_TO_OPENAPI).
TYPES = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "dict": "object",
    "object": "object",
    "tuple": "array",
    "any": "string",
}
# Runs inside the bfcl venv: reads items on stdin, prints one verdict per item.
SCORER = """
import json, sys
from bfcl_eval.constants.enums import Language
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
for line in sys.stdin:
    item = json.loads(line)
    try:
        verdict = ast_checker(item["function"], item["output"], item["answer"],
                              Language.PYTHON, item["category"], "openbmb/MiniCPM-SALA-FC")
        print(json.dumps({"valid": bool(verdict["valid"]), "error": verdict.get("error_type")}))
    except Exception as exc:  # a checker crash is a miss, reported by its class
        print(json.dumps({"valid": False, "error": "checker:" + type(exc).__name__}))
"""
LOCATE = "import bfcl_eval, pathlib; print(pathlib.Path(bfcl_eval.__file__).parent)"


@dataclass
class Outcome:
    category: str
    item_id: str
    calls: list[tuple[str, str]]
    content: str
    seconds: float
    malformed: bool = False
    valid: bool = False
    error: str | None = None


@dataclass
class SystemResult:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    note: str = ""


def _openai_schema(properties: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in properties.items():
        value = dict(value)
        value["type"] = TYPES.get(value.get("type", "string"), "string")
        if "properties" in value:
            value["properties"] = _openai_schema(value["properties"])
        if isinstance(value.get("items"), dict):
            items = dict(value["items"])
            items["type"] = TYPES.get(items.get("type", "string"), "string")
            if "properties" in items:
                items["properties"] = _openai_schema(items["properties"])
            if isinstance(items.get("items"), dict):
                inner = dict(items["items"])
                inner["type"] = TYPES.get(inner.get("type", "string"), "string")
                items["items"] = inner
            value["items"] = items
        out[key] = value
    return out


def to_tools(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BFCL functions as OpenAI tools (what BFCL's OpenAI FC handler sends)."""
    tools = []
    for function in copy.deepcopy(functions):
        parameters = function.get("parameters") or {}
        parameters["type"] = "object"
        parameters["properties"] = _openai_schema(parameters.get("properties", {}))
        tool = {
            "name": re.sub(r"\.", "_", function["name"]),
            "description": function.get("description", ""),
            "parameters": parameters,
        }
        tools.append({"type": "function", "function": tool})
    return tools


def load_items(data: Path, category: str, limit: int) -> list[dict[str, Any]]:
    lines = (data / f"BFCL_v4_{category}.json").read_text().splitlines()[:limit]
    items = [json.loads(line) for line in lines]
    answers_file = data / "possible_answer" / f"BFCL_v4_{category}.json"
    if answers_file.exists():
        answers = {
            a["id"]: a["ground_truth"]
            for a in map(json.loads, answers_file.read_text().splitlines())
        }
        for item in items:
            item["answer"] = answers.get(item["id"])
    return items


def looks_like_text_call(content: str, names: set[str]) -> bool:
    """Text that carries a call to one of ``names``: left for the client to dig out."""
    if "<tool_call>" in content:
        return True
    return any(re.search(r'"name"\s*:\s*"' + re.escape(name) + '"', content) for name in names)


def ask(client: openai.OpenAI, model: str, item: dict[str, Any], max_tokens: int) -> Outcome:
    tools = to_tools(item["function"])
    started = time.monotonic()
    try:
        reply = client.chat.completions.create(
            model=model,
            messages=item["question"][0],
            tools=tools,  # type: ignore[arg-type]
            tool_choice="auto",
            temperature=0,
            max_tokens=max_tokens,
        )
    except openai.APIError as exc:
        return Outcome("", item["id"], [], f"error: {exc}", time.monotonic() - started, True)
    message = reply.choices[0].message
    calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]  # type: ignore[union-attr]
    content = message.content or ""
    names = {tool["function"]["name"] for tool in tools}
    malformed = looks_like_text_call(content, names)
    for _, arguments in calls:
        try:
            malformed |= not isinstance(json.loads(arguments), dict)
        except json.JSONDecodeError:
            malformed = True
    return Outcome("", item["id"], calls, content, time.monotonic() - started, malformed)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server did not become healthy: {url}")


@contextmanager
def ember_server(home: Path, src: Path, threads: int) -> Iterator[str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "ember.toml").write_text(f'preload = ["default"]\nn_threads = {threads}\n')
    port = free_port()
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
    env["PYTHONPATH"] = str(src)
    log = home / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ember", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz", process, log)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()
            process.wait(timeout=60)


@contextmanager
def llama_server(binary: Path, gguf: Path, threads: int, log: Path) -> Iterator[str]:
    port = free_port()
    command = [str(binary), "-m", str(gguf), "--jinja", "--host", "127.0.0.1"]
    command += ["--port", str(port), "-t", str(threads), "-c", "8192", "--parallel", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", process, log)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()
            process.wait(timeout=60)


def run_system(
    name: str, base_url: str, model: str, items: dict[str, list[dict[str, Any]]], max_tokens: int
) -> SystemResult:
    client = openai.OpenAI(base_url=base_url, api_key="bench", timeout=600, max_retries=0)
    result = SystemResult(name)
    for category, batch in items.items():
        for item in batch:
            outcome = ask(client, model, item, max_tokens)
            outcome.category = category
            result.outcomes.append(outcome)
        print(f"  {name} {category}: {len(batch)} asked", file=sys.stderr, flush=True)
    return result


def score(result: SystemResult, items: dict[str, list[dict[str, Any]]], bfcl_python: str) -> None:
    by_id = {item["id"]: item for batch in items.values() for item in batch}
    lines, scored = [], []
    for outcome in result.outcomes:
        if outcome.category == "irrelevance":
            outcome.valid = not outcome.calls
            continue
        item = by_id[outcome.item_id]
        output = []
        for call_name, arguments in outcome.calls:
            try:
                parsed = json.loads(arguments)
            except json.JSONDecodeError:
                parsed = None
            output.append({call_name: parsed if isinstance(parsed, dict) else {}})
        if not output:
            outcome.error = "no call"
            continue
        record = {"function": item["function"], "output": output, "answer": item["answer"]}
        lines.append(json.dumps({**record, "category": outcome.category}))
        scored.append(outcome)
    verdicts = subprocess.run(
        [bfcl_python, "-c", SCORER],
        input="\n".join(lines),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for outcome, verdict in zip(scored, map(json.loads, verdicts), strict=True):
        outcome.valid, outcome.error = verdict["valid"], verdict["error"]


def accuracy(result: SystemResult, category: str) -> float | None:
    picked = [o for o in result.outcomes if o.category == category]
    return sum(o.valid for o in picked) / len(picked) if picked else None


def report(results: list[SystemResult], categories: list[str]) -> Table:
    table = Table(title="BFCL (first N items per category), tool_choice auto, temperature 0")
    table.add_column("category")
    for result in results:
        table.add_column(result.name, justify="right")
    if len(results) > 1:
        table.add_column(f"{results[0].name}/{results[-1].name}", justify="right")

    def row(label: str, values: list[float | None], percent: bool = True) -> None:
        cells = ["-" if v is None else (f"{v:.1%}" if percent else f"{v:g}") for v in values]
        if len(values) > 1:
            first, last = values[0], values[-1]
            cells.append(f"{first / last:.2f}" if first is not None and last else "-")
        table.add_row(label, *cells)

    for category in categories:
        row(category, [accuracy(r, category) for r in results])
    ast = [c for c in NON_LIVE_AST if c in categories]
    if ast:
        means = []
        for result in results:
            values = [accuracy(result, c) for c in ast]
            means.append(sum(v for v in values if v is not None) / len(ast))
        row("non-live AST (mean)", means)
    row("malformed", [float(sum(o.malformed for o in r.outcomes)) for r in results], False)
    row("calls as text", [float(_text_calls(r)) for r in results], False)
    row("seconds / request", [_mean_seconds(r) for r in results], False)
    return table


def _text_calls(result: SystemResult) -> int:
    return sum(1 for o in result.outcomes if o.malformed and not o.calls)


def _mean_seconds(result: SystemResult) -> float:
    return round(sum(o.seconds for o in result.outcomes) / max(1, len(result.outcomes)), 2)


def export_source(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    tar_path = into / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=20, help="first N items per category")
    parser.add_argument(
        "--systems",
        default="after,before,llama-server",
        help="comma list, in column order: after, before, ref:GITREF, llama-server",
    )
    parser.add_argument("--base-ref", default="", help="git ref of 'before' (default: main)")
    parser.add_argument("--categories", default=",".join(CATEGORIES + LIVE))
    parser.add_argument("--bfcl-python", default="/work/bfcl-venv/bin/python")
    parser.add_argument("--llama-server", default="/work/llama-server-build/bin/llama-server")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--home", default="", help="EMBER_HOME to reuse (the joined model)")
    parser.add_argument(
        "--json",
        default="",
        help="keep every response here; systems saved by earlier runs join the table",
    )
    args = parser.parse_args()

    located = subprocess.run([args.bfcl_python, "-c", LOCATE], capture_output=True, text=True)
    if located.returncode:
        print(f"bfcl_eval is not importable by {args.bfcl_python}", file=sys.stderr)
        return 2
    data = Path(located.stdout.strip()) / "data"
    categories = args.categories.split(",")
    items = {c: load_items(data, c, args.limit) for c in categories}
    base_ref = (
        args.base_ref
        or subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )

    saved = _load(Path(args.json)) if args.json else {}
    results: list[SystemResult] = []
    with tempfile.TemporaryDirectory(prefix="ember-bench-tools-") as scratch:
        home = Path(args.home) if args.home else Path(scratch) / "home"
        for name in args.systems.split(","):
            print(f"{name}: starting", file=sys.stderr, flush=True)
            result = run_named(name, args, items, home, Path(scratch), base_ref)
            if result is None:
                continue
            score(result, items, args.bfcl_python)
            results.append(result)
            saved[name] = result
            if args.json:  # after each system, so a long run split over calls keeps its parts
                _save(Path(args.json), saved)
    Console().print(report(list(saved.values()), categories))
    for result in saved.values():
        if result.note:
            print(f"{result.name}: {result.note}")
    return 0


def run_named(
    name: str,
    args: argparse.Namespace,
    items: dict[str, list[dict[str, Any]]],
    home: Path,
    scratch: Path,
    base_ref: str,
) -> SystemResult | None:
    """Start system ``name``, ask it every item, stop it."""
    if name == "llama-server":
        binary, gguf = Path(args.llama_server), home / GGUF
        if not binary.exists() or not gguf.exists():
            print(f"skipping llama-server: {binary} or {gguf} missing", file=sys.stderr)
            return None
        with llama_server(binary, gguf, args.threads, scratch / "llama-server.log") as url:
            result = run_system(name, url, "qwen", items, args.max_tokens)
        result.note = "llama-server --jinja, " + _llama_version(binary)
        return result
    if name == "after":
        src, note = ROOT / "src", "this checkout"
    elif name == "before" or name.startswith("ref:"):
        ref = base_ref if name == "before" else name[4:]
        src, note = export_source(ref, scratch / re.sub(r"\W", "_", name)), f"git {ref[:12]}"
    else:
        raise SystemExit(f"unknown system {name}: after, before, ref:REF or llama-server")
    with ember_server(home, src, args.threads) as url:
        result = run_system(name, url, "default", items, args.max_tokens)
    result.note = note
    return result


def _llama_version(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return next((line for line in lines if line.startswith("version")), "version unknown")


def _load(path: Path) -> dict[str, SystemResult]:
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return {
        name: SystemResult(name, [Outcome(**o) for o in entry["outcomes"]], entry["note"])
        for name, entry in saved.items()
    }


def _save(path: Path, saved: dict[str, SystemResult]) -> None:
    dump = {
        name: {"note": r.note, "outcomes": [vars(o) for o in r.outcomes]}
        for name, r in saved.items()
    }
    path.write_text(json.dumps(dump, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
