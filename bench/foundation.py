"""What the portable llama.cpp build and the engine processes cost, measured in one run.

Two comparisons, each A/B alternated round by round with one llama.cpp process at a time:

* ``build``: single-stream decode speed of the llama-cpp-python wheel Ember installs (built
  with ``scripts/llama_cpp_build.py``'s explicit ISA flags, ``GGML_NATIVE=OFF``) against a
  ``-march=native`` build of the same sdist (``GGML_NATIVE=ON``, llama-cpp-python's default),
  on this machine, which must be one where the native build runs (no AMX trap). Each run is
  a fresh Python process that loads the model with ``llama_cpp.Llama`` and streams a greedy
  completion; decode tok/s = ``(tokens - 1) / (last token - first token)``. The native wheel
  is compiled once into ``.bench/llama-native/`` (about 5 minutes on 2 cores).
* ``isolation``: ``ember serve`` with ``engine_isolation = true`` (the engine in a process of
  its own, the default) against ``false`` (in the server's process): single-stream decode
  tok/s (median of ``--runs``) and the aggregate decode tok/s of 8 concurrent streams,
  measured over HTTP with ``bench/serve.py``'s client.

Targets, printed beside the ratios: the portable build ≥ 0.97x native; isolation within 3%
(≥ 0.97x) on both rows. The exit status is non-zero only when something broke.

    .venv/bin/python bench/foundation.py                 # both parts, smollm2 and qwen
    .venv/bin/python bench/foundation.py --part isolation --models smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from rich.table import Table
from serve import (  # bench/, next to this script
    CONCURRENT_PROMPTS,
    FLUSH,
    PROMPT,
    BenchError,
    concurrent_round,
    console,
    context_for,
    ember_engine,
    fresh,
    model_paths,
    ratio,
)

from ember.models.embedded import QWEN_ID, SMOLLM2_ID

ROOT = Path(__file__).resolve().parents[1]
NATIVE_DIR = ROOT / ".bench" / "llama-native"
TARGET = 0.97

MEASURE = r"""
import json, sys, time
import llama_cpp
path, threads, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = llama_cpp.Llama(path, n_threads=threads, n_threads_batch=threads, n_ctx=2048,
                      verbose=False)
prompt = "Write a long, detailed guide to baking sourdough bread at home, step by step:\n1."
def run():
    stamps = []
    for _ in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0, stream=True):
        stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])
run()  # warm-up
speeds = [run() for _ in range(3)]
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"tps": sorted(speeds)[1], "info": info}))
"""


def native_site(python: str) -> Path:
    """The ``-march=native`` wheel, unpacked; compiled on first use."""
    site = NATIVE_DIR / "site"
    if (site / "llama_cpp").is_dir():
        return site
    NATIVE_DIR.mkdir(parents=True, exist_ok=True)
    wheels = sorted(NATIVE_DIR.glob("llama_cpp_python-*.whl"))
    if not wheels:
        lock = (ROOT / "requirements" / "runtime.lock").read_text().splitlines()
        at = next(i for i, line in enumerate(lock) if line.startswith("llama-cpp-python=="))
        req = NATIVE_DIR / "llama.req"
        req.write_text("\n".join(lock[at : at + 2]) + "\n")
        console.print("compiling llama-cpp-python with GGML_NATIVE=ON (about 5 minutes)...")
        env = {**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=ON", "CMAKE_BUILD_PARALLEL_LEVEL": "2"}
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-cache-dir",
                "--no-deps",
                "--require-hashes",
                "-r",
                str(req),
                "-w",
                str(NATIVE_DIR),
            ],
            env=env,
            check=True,
        )
        wheels = sorted(NATIVE_DIR.glob("llama_cpp_python-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(site)
    return site


def decode_once(site: Path | None, model: Path, threads: int, max_tokens: int) -> dict[str, Any]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(model), str(threads), str(max_tokens)],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise BenchError(f"the decode run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_build(models: dict[str, Path], args: argparse.Namespace) -> list[dict[str, Any]]:
    site = native_site(sys.executable)
    build = json.loads((Path(sys.prefix) / "llama-cpp-build.json").read_text())
    console.print(f"portable build: {build['cmake_args']}")
    rows = []
    for model_id, path in models.items():
        speeds: dict[str, list[float]] = {"portable": [], "native": []}
        infos: dict[str, str] = {}
        for round_ in range(args.rounds):
            order = ["portable", "native"] if round_ % 2 == 0 else ["native", "portable"]
            for name in order:
                got = decode_once(site if name == "native" else None, path, args.threads, 128)
                speeds[name].append(got["tps"])
                infos[name] = got["info"]
                console.print(f"  {model_id} {name}: {got['tps']:.1f} tok/s")
        portable = statistics.median(speeds["portable"])
        native = statistics.median(speeds["native"])
        rows.append(
            {
                "model": model_id,
                "portable_tps": portable,
                "native_tps": native,
                "ratio": ratio(portable, native),
                "portable_info": infos["portable"],
                "native_info": infos["native"],
            }
        )
    return rows


def measure_ember(model_id: str, isolated: bool, args: argparse.Namespace) -> dict[str, float]:
    n_ctx = context_for(model_id, 8192)
    extra = f"engine_isolation = {'true' if isolated else 'false'}\n"
    with (
        tempfile.TemporaryDirectory() as home,
        ember_engine(model_id, args.threads, n_ctx, Path(home), extra) as (chat, _command, _pid),
    ):
        chat(PROMPT, args.max_tokens)  # warm-up
        single = []
        for index in range(args.runs):
            chat(FLUSH, 1)
            single.append(chat(fresh(PROMPT, index), args.max_tokens).decode_tps)
        chat(FLUSH, 1)
        batch = concurrent_round(chat, [fresh(p, 99) for p in CONCURRENT_PROMPTS], args.max_tokens)
        span = max(r.last_at for r in batch) - min(r.first_at for r in batch)
        aggregate = ratio(sum(r.tokens for r in batch), span)
    return {"single_tps": statistics.median(single), "aggregate8_tps": aggregate}


def bench_isolation(models: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for model_id in models:
        got: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for round_ in range(args.rounds):
            for isolated in (True, False) if round_ % 2 == 0 else (False, True):
                result = measure_ember(model_id, isolated, args)
                got[isolated].append(result)
                label = "engine process" if isolated else "in the server"
                console.print(
                    f"  {model_id} {label}: {result['single_tps']:.1f} tok/s single, "
                    f"{result['aggregate8_tps']:.1f} tok/s x8"
                )
        row: dict[str, Any] = {"model": model_id}
        for key in ("single_tps", "aggregate8_tps"):
            iso = statistics.median(r[key] for r in got[True])
            inproc = statistics.median(r[key] for r in got[False])
            row[key] = {"isolated": iso, "in_process": inproc, "ratio": ratio(iso, inproc)}
        rows.append(row)
    return rows


def verdict(value: float) -> str:
    return "[green]pass[/]" if value >= TARGET else "[red]miss[/]"


def print_report(report: dict[str, Any]) -> None:
    if "build" in report:
        table = Table(title="llama.cpp build: decode tok/s, one stream (median of rounds)")
        for column in ("model", "portable (Ember)", "-march=native", "ratio", "≥ 0.97"):
            table.add_column(column)
        for row in report["build"]:
            table.add_row(
                row["model"],
                f"{row['portable_tps']:.1f}",
                f"{row['native_tps']:.1f}",
                f"{row['ratio']:.3f}",
                verdict(row["ratio"]),
            )
        console.print(table)
    if "isolation" in report:
        table = Table(title="Engine process vs in the server: decode tok/s (median of rounds)")
        for column in ("model", "measure", "engine process", "in server", "ratio", "≥ 0.97"):
            table.add_column(column)
        for row in report["isolation"]:
            for key, label in (("single_tps", "1 stream"), ("aggregate8_tps", "8 streams")):
                cell = row[key]
                table.add_row(
                    row["model"],
                    label,
                    f"{cell['isolated']:.1f}",
                    f"{cell['in_process']:.1f}",
                    f"{cell['ratio']:.3f}",
                    verdict(cell["ratio"]),
                )
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("build", "isolation", "all"), default="all")
    parser.add_argument("--models", nargs="+", default=[SMOLLM2_ID, QWEN_ID])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4, help="A/B rounds (alternating order)")
    parser.add_argument("--runs", type=int, default=3, help="single-stream runs per round")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"cpu": _cpu_name()}
    try:
        with tempfile.TemporaryDirectory() as home:
            paths = model_paths(args.models, Path(home))
            if args.part in ("build", "all"):
                report["build"] = bench_build(paths, args)
            if args.part in ("isolation", "all"):
                report["isolation"] = bench_isolation(args.models, args)
    except BenchError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    console.print(f"{report['cpu']}, {args.threads} threads, {args.rounds} rounds")
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
