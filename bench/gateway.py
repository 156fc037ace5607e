"""Gateway overhead: Ember's router against the LiteLLM proxy, in front of the same upstream.

One command (``python bench/gateway.py``) runs, one gateway at a time:

* a fake OpenAI-compatible upstream (``bench/fake_upstream.py``: raw ASGI on one uvicorn
  process with uvloop and httptools) that answers every chat completion after a fixed 50 ms;
* ``direct``: the load generator straight at the upstream: the baseline, and the ceiling
  this machine can show for any gateway (load generator and upstream alone);
* ``ember (guard off)``: ``python -m ember serve`` (one process) with one route to the
  upstream, no cache, no PII recognizers (``guard_recognizers = []``; the injection detectors
  still run, there is no switch for them), audit log and request log on as shipped
  (``log_synchronous_commit = true``: each answer waits for its records' commit);
* ``ember (guard on)``: the same with every PII recognizer (the default);
* ``litellm``: ``litellm --config`` (the proxy as its docs start it, one worker like Ember)
  from a separate virtualenv the script creates under ``.bench/`` (``pip install
  'litellm[proxy]'``), never the project's.

The load generator is ``wrk`` (``apt-get install wrk``; one thread, a Lua script that POSTs
the JSON body), a compiled client that costs a small fraction of the CPU a Python one
would; without it the script falls back to httpx and says so. For each gateway: **added
latency** p50/p99 (one client, back to back, for ``--latency-seconds``; the gateway's
percentile minus the direct one), **requests/s** with 32 and 128 keep-alive clients for
``--seconds`` each, the **error rate** under load, and the gateway's **RSS** after the
load. Non-streaming chat completions with a short prompt. Ratios compare Ember with LiteLLM
(targets: added latency <= 0.3x, throughput >= 3x).

Everything shares this machine's cores with the load generator (and with whatever else runs:
the table's title gives the load average), so absolute numbers are modest and noisy; the
same run measures every gateway. Run under the bench lock:
``flock /tmp/ember-bench.lock .venv/bin/python bench/gateway.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench"
LITELLM_VENV = BENCH_DIR / "litellm-venv"
LITELLM_SPEC = "litellm[proxy]==1.106.2"
MODEL = "bench"
GATEWAYS = ("ember-guard-off", "ember-guard-on", "litellm")
KEY = "sk-" + secrets.token_hex(32)  # both gateways authenticate it (LiteLLM wants a strong one)
BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
    "max_tokens": 16,
}
console = Console(width=None if sys.stdout.isatty() else 140)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not start in {timeout:.0f} s")


@contextmanager
def process(
    cmd: list[str], *, env: dict[str, str], ready: str, log: Path
) -> Iterator[psutil.Process]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_ready(ready, proc, 240, log)
            yield psutil.Process(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rss_mb(proc: psutil.Process) -> float:
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


@dataclass
class Result:
    name: str
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    rps: dict[int, float] = field(default_factory=dict)
    errors: int = 0
    requests: int = 0
    rss_mb: float = 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%(body)s]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("EMBER_WRK %%d %%d %%d %%d %%.1f %%.1f\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Run:
    """One load run: requests answered 200, failed ones, seconds, and latency percentiles."""

    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float


def run_wrk(wrk: str, url: str, connections: int, seconds: float, script: Path) -> Run:
    """``connections`` keep-alive clients sending back to back for ``seconds`` (wrk, one thread:
    a compiled load generator costs a fraction of the CPU a Python one would take)."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
    out = subprocess.run([*cmd, "-s", str(script), url], capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("EMBER_WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}{out.stderr}")
    requests, duration_us, socket_errors, status_errors, p50_us, p99_us = line.split()[1:]
    errors = int(socket_errors) + int(status_errors)
    return Run(
        ok=int(requests) - int(status_errors),
        errors=errors,
        seconds=int(duration_us) / 1e6,
        p50_ms=float(p50_us) / 1000,
        p99_ms=float(p99_us) / 1000,
    )


async def run_httpx(url: str, connections: int, seconds: float, headers: dict[str, str]) -> Run:
    """The same with httpx, for a machine without wrk (it costs far more CPU per request)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    ok = errors = 0
    times: list[float] = []
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal ok, errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post(url, json=BODY)
                except httpx.HTTPError:
                    errors += 1
                    continue
                if response.status_code == 200:
                    ok += 1
                    times.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    p50 = statistics.median(times) if times else 0.0
    p99 = statistics.quantiles(times, n=100)[98] if len(times) >= 2 else p50
    return Run(ok, errors, elapsed, p50, p99)


class LoadGenerator:
    def __init__(self, work: Path) -> None:
        self.wrk = shutil.which("wrk")
        self.script = work / "post.lua"
        self.script.write_text(WRK_SCRIPT % {"body": json.dumps(BODY), "key": KEY})
        self.headers = {"Authorization": f"Bearer {KEY}"}

    @property
    def name(self) -> str:
        return "wrk" if self.wrk else "httpx (install wrk for a leaner load generator)"

    def run(self, url: str, connections: int, seconds: float) -> Run:
        if self.wrk:
            return run_wrk(self.wrk, url, connections, seconds, self.script)
        return asyncio.run(run_httpx(url, connections, seconds, self.headers))


def measure(
    name: str,
    url: str,
    args: argparse.Namespace,
    proc: psutil.Process | None,
    load: LoadGenerator,
) -> Result:
    load.run(url, 1, 1.0)  # warm-up
    sequential = load.run(url, 1, args.latency_seconds)
    result = Result(name)
    result.p50_ms = sequential.p50_ms
    result.p99_ms = sequential.p99_ms
    result.errors += sequential.errors
    result.requests += sequential.ok + sequential.errors
    for concurrency in args.concurrency:
        run = load.run(url, concurrency, args.seconds)
        result.rps[concurrency] = run.ok / run.seconds
        result.errors += run.errors
        result.requests += run.ok + run.errors
    if proc is not None:
        result.rss_mb = rss_mb(proc)
    console.print(
        f"  {name}: p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        + ", ".join(f"{c}: {r:.0f} req/s" for c, r in result.rps.items())
        + f", errors {result.errors}/{result.requests}, RSS {result.rss_mb:.0f} MB"
    )
    return result


def ensure_litellm() -> Path:
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    console.print(f"Creating {LITELLM_VENV} with {LITELLM_SPEC} (once)...")
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q"]
    report = BENCH_DIR / "litellm-plan.json"
    subprocess.run([*pip, "--dry-run", "--report", str(report), LITELLM_SPEC], check=True)
    planned = [i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]]
    heavy = [n for n in planned if n.startswith(("torch", "nvidia", "triton"))]
    if heavy:
        raise RuntimeError(f"{LITELLM_SPEC} would pull {heavy}; refusing")
    subprocess.run([*pip, LITELLM_SPEC], check=True)
    return exe


def ember_config(upstream: str, *, guard: bool) -> str:
    recognizers = "" if guard else "guard_recognizers = []\n"
    return f"""preload = []
log_level = "warning"
api_keys = ["{KEY}"]
{recognizers}
[cache]
enabled = false

[providers.upstream]
base_url = "{upstream}"
models = ["gpt-bench"]
max_concurrency = 256

[routes.{MODEL}]
targets = ["upstream/gpt-bench"]
"""


def litellm_config(upstream: str) -> str:
    return f"""general_settings:
  master_key: {KEY}
model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/gpt-bench
      api_base: {upstream}
      api_key: sk-upstream
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0, help="Upstream latency.")
    parser.add_argument(
        "--latency-seconds", type=float, default=5.0, help="Sequential requests for latency."
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="Per concurrency level.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128])
    parser.add_argument(
        "--gateways",
        nargs="+",
        choices=GATEWAYS,
        default=list(GATEWAYS),
        help="Which to measure (direct always runs: it is the baseline).",
    )
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    BENCH_DIR.mkdir(exist_ok=True)
    litellm = ensure_litellm() if "litellm" in args.gateways else None
    work = Path(tempfile.mkdtemp(prefix="ember-bench-gateway-"))
    load = LoadGenerator(work)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    results: list[Result] = []
    fake_cmd = [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--port", str(up_port)]
    fake_cmd += ["--latency-ms", str(args.latency_ms)]
    with process(fake_cmd, env=env, ready=f"{upstream}/models", log=work / "upstream.log"):
        console.print(
            f"Upstream: {upstream} ({args.latency_ms:g} ms per answer), load: {load.name}"
        )
        results.append(
            measure("direct (ceiling)", f"{upstream}/chat/completions", args, None, load)
        )
        for guard in (False, True):
            if f"ember-guard-{'on' if guard else 'off'}" not in args.gateways:
                continue
            home = work / f"ember-guard-{'on' if guard else 'off'}"
            home.mkdir()
            (home / "ember.toml").write_text(ember_config(upstream, guard=guard))
            port = free_port()
            ember_env = {**env, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}
            cmd = [sys.executable, "-m", "ember", "serve", "--port", str(port)]
            base = f"http://127.0.0.1:{port}"
            with process(cmd, env=ember_env, ready=f"{base}/healthz", log=home / "log") as proc:
                name = f"ember (guard {'on' if guard else 'off'})"
                results.append(measure(name, f"{base}/v1/chat/completions", args, proc, load))
        if litellm is not None:
            (work / "litellm.yaml").write_text(litellm_config(upstream))
            port = free_port()
            cmd = [str(litellm), "--config", str(work / "litellm.yaml"), "--port", str(port)]
            cmd += ["--host", "127.0.0.1", "--num_workers", "1"]
            lite_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            lite_env["LITELLM_LOG"] = "ERROR"
            ready = f"http://127.0.0.1:{port}/health/liveliness"
            with process(cmd, env=lite_env, ready=ready, log=work / "litellm.log") as proc:
                base = f"http://127.0.0.1:{port}"
                results.append(measure("litellm", f"{base}/v1/chat/completions", args, proc, load))
    args.load_name = load.name
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


def report(results: list[Result], args: argparse.Namespace) -> None:
    direct = results[0]
    lite = next((r for r in results if r.name == "litellm"), None)
    load1, load5, _ = os.getloadavg()
    table = Table(
        title=f"Gateway overhead, upstream {args.latency_ms:g} ms, load generator "
        f"{args.load_name}; noisy, shared CPU ({os.cpu_count()} cores, load average "
        f"{load1:.1f} now, {load5:.1f} over 5 min)"
    )
    table.add_column("gateway")
    table.add_column("added p50 ms", justify="right")
    table.add_column("added p99 ms", justify="right")
    for c in args.concurrency:
        table.add_column(f"req/s @{c}", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("RSS MB", justify="right")
    for r in results:
        added50 = r.p50_ms - direct.p50_ms
        added99 = r.p99_ms - direct.p99_ms
        cells = [r.name, f"{added50:.1f}", f"{added99:.1f}"]
        cells += [f"{r.rps[c]:.0f}" for c in args.concurrency]
        cells += [f"{r.error_rate:.1%}", f"{r.rss_mb:.0f}" if r.rss_mb else "-"]
        table.add_row(*cells)
    if lite is not None:
        for r in results:
            if not r.name.startswith("ember"):
                continue
            lite50 = max(lite.p50_ms - direct.p50_ms, 1e-9)
            lite99 = max(lite.p99_ms - direct.p99_ms, 1e-9)
            cells = [
                f"{r.name} / litellm",
                f"{(r.p50_ms - direct.p50_ms) / lite50:.2f}x",
                f"{(r.p99_ms - direct.p99_ms) / lite99:.2f}x",
            ]
            cells += [f"{r.rps[c] / lite.rps[c]:.2f}x" for c in args.concurrency]
            cells += ["", f"{r.rss_mb / lite.rss_mb:.2f}x" if lite.rss_mb else "-"]
            table.add_row(*cells, style="bold")
    console.print(table)
    if lite is None:
        return
    for r in results:
        if not r.name.startswith("ember"):
            continue
        lite50 = max(lite.p50_ms - direct.p50_ms, 1e-9)
        overhead = (r.p50_ms - direct.p50_ms) / lite50
        speedups = [r.rps[c] / lite.rps[c] for c in args.concurrency]
        console.print(
            f"{r.name}: added p50 {overhead:.2f}x LiteLLM's (target <= 0.3x: "
            f"{'PASS' if overhead <= 0.3 else 'FAIL'}), throughput "
            + ", ".join(f"{x:.2f}x @{c}" for x, c in zip(speedups, args.concurrency, strict=True))
            + f" (target >= 3x: {'PASS' if min(speedups) >= 3 else 'FAIL'})"
        )


if __name__ == "__main__":
    sys.exit(main())
