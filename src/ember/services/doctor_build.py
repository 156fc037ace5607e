"""``ember doctor``'s checks of the machine and the install: the CPU's instruction sets, the
llama.cpp build (the record ``scripts/install.sh`` leaves in the virtual environment, the
library's own report, AMX compiled in and granted, the same build as
``scripts/llama_cpp_build.py`` would choose now), threads, and installed versions against
the lock.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.version import InvalidVersion, Version

from ember.services.doctor_check import (
    Check,
    build_record_path,
    installed_lock_path,
    reinstall_command,
    repository_root,
)
from ember.settings import Settings

# -- CPU and the llama.cpp build -----------------------------------------------------------

# ggml's cmake option -> the /proc/cpuinfo flag the code it compiles needs
# (as in scripts/llama_cpp_build.py, which chooses the options from these flags).
GGML_CPU_FLAGS: dict[str, str] = {
    "GGML_SSE42": "sse4_2",
    "GGML_AVX": "avx",
    "GGML_AVX2": "avx2",
    "GGML_BMI2": "bmi2",
    "GGML_FMA": "fma",
    "GGML_F16C": "f16c",
    "GGML_AVX_VNNI": "avx_vnni",
    "GGML_AVX512": "avx512f",
    "GGML_AVX512_VBMI": "avx512vbmi",
    "GGML_AVX512_VNNI": "avx512_vnni",
    "GGML_AVX512_BF16": "avx512_bf16",
    "GGML_AMX_TILE": "amx_tile",
    "GGML_AMX_INT8": "amx_int8",
    "GGML_AMX_BF16": "amx_bf16",
}
_SHOWN_FEATURES = (*GGML_CPU_FLAGS.values(), "asimd", "asimddp", "i8mm", "sve")

# Asks the kernel for AMX tile state and runs ldtilecfg: where the process is not granted
# AMX (some VMs), llama.cpp's AMX code dies here (the probe of scripts/llama_cpp_build.py).
_AMX_PROBE = r"""
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
struct tile_config { unsigned char palette_id, start_row, reserved[14];
                     unsigned short colsb[16]; unsigned char rows[16]; };
int main(void) {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) return 3;
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1; cfg.rows[0] = 16; cfg.colsb[0] = 64;
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_release();
    return 0;
}
"""


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags, from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), set()
    name, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Hardware") and not name:
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return name or platform.machine(), flags


def amx_granted() -> tuple[bool, str]:
    """Compile and run the AMX probe in a child process: a crash there is a 'no'."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        return False, "no C compiler to probe AMX with"
    with tempfile.TemporaryDirectory() as tmp:
        source, program = Path(tmp, "amx.c"), Path(tmp, "amx")
        source.write_text(_AMX_PROBE)
        built = subprocess.run(
            [cc, "-O1", "-mamx-tile", source, "-o", program], capture_output=True
        )
        if built.returncode != 0:
            return False, "the compiler cannot build AMX code"
        ran = subprocess.run([program], capture_output=True)
    if ran.returncode == 0:
        return True, "the probe ran ldtilecfg"
    if ran.returncode < 0:
        return False, f"the probe died with signal {-ran.returncode} (AMX tile state not granted)"
    return False, "the kernel refused AMX tile state (arch_prctl)"


def check_cpu() -> Check:
    name, flags = cpu_info()
    shown = [f for f in _SHOWN_FEATURES if f in flags]
    return Check("cpu", True, f"{name}: {' '.join(shown) or 'no SIMD extensions reported'}")


def _build_record() -> dict[str, Any] | None:
    try:
        record = json.loads(build_record_path().read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _library_features() -> list[str]:
    """What the loaded llama.cpp library reports it was built with (``NAME = 1``)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    return re.findall(r"(\w+) = 1", info)


def check_llama_build(*, library: bool = True) -> Check:
    """The llama.cpp build suits this CPU: nothing compiled in that it lacks, AMX granted."""
    name, fix = "llama.cpp build", reinstall_command()
    record = _build_record()
    _, flags = cpu_info()
    enabled: list[str] = list(record.get("enabled", [])) if record else []
    if record and record.get("machine") != platform.machine():
        return Check(name, False, f"built for {record.get('machine')}, not this machine", fix)
    lacking = [o for o in enabled if o in GGML_CPU_FLAGS and GGML_CPU_FLAGS[o] not in flags]
    if flags and lacking:  # the library would die with SIGILL: do not even load it
        return Check(
            name,
            False,
            f"compiled for instructions this CPU lacks ({', '.join(lacking)}): a wheel built "
            "for another CPU",
            fix,
        )
    features = [o.removeprefix("GGML_") for o in enabled]
    if library:
        try:
            features = _library_features()
        except (ImportError, OSError) as exc:
            return Check(name, False, f"llama_cpp cannot be loaded ({type(exc).__name__})", fix)
    amx = any(f.startswith("AMX") for f in features)
    if amx and "amx_tile" not in flags:
        return Check(name, False, "AMX is compiled in but this CPU does not report it", fix)
    if amx and not (granted := amx_granted())[0]:
        return Check(name, False, f"AMX is compiled in but {granted[1]}", fix)
    avx512 = any(f.startswith("AVX512") for f in features)
    detail = (
        f"{record['package'] if record else 'llama-cpp-python'}: {' '.join(features)}; "
        f"AVX-512 {'in use' if avx512 else 'not in use'}, AMX {'in use' if amx else 'not in use'}"
    )
    if record is None:  # not installed by scripts/install.sh: nothing to compare with
        return Check(name, True, f"{detail}; no build record at {build_record_path()}")
    return Check(name, True, f"{detail} ({record.get('amx', '')})")


def check_llama_build_key() -> Check | None:
    """The wheel is the one ``scripts/llama_cpp_build.py`` would choose here now (or None
    without a checkout or build record)."""
    repo, record = repository_root(), _build_record()
    script = repo / "scripts" / "llama_cpp_build.py" if repo else None
    if script is None or not script.is_file() or record is None:
        return None
    name = "llama.cpp build key"
    # Without a version argument, as scripts/install.sh runs it.
    ran = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120)
    try:
        chosen = json.loads(ran.stdout)
    except ValueError:
        return Check(name, False, f"{script} failed: {ran.stderr.strip()[-300:]}")
    if chosen.get("key") == record.get("key"):
        return Check(name, True, f"the wheel was built for this machine (key {record['key']})")
    changed = sorted(set(chosen.get("enabled", [])) ^ set(record.get("enabled", [])))
    if chosen.get("compiler") != record.get("compiler"):
        changed.append(f"compiler {record.get('compiler')} -> {chosen.get('compiler')}")
    return Check(
        name,
        False,
        f"built with key {record.get('key')}, this machine now chooses {chosen.get('key')} "
        f"({', '.join(changed) or 'other cmake arguments'})",
        reinstall_command(),
    )


# -- threads and packages ------------------------------------------------------------------


def check_threads(settings: Settings) -> Check:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    detail = f"n_threads {settings.n_threads}, {cpus} CPUs available"
    if settings.n_threads > cpus:
        return Check(
            "threads",
            True,
            f"{detail}: oversubscribed, every llama.cpp step waits for descheduled threads",
            f"EMBER_N_THREADS={cpus} (or n_threads = {cpus} in ember.toml)",
        )
    return Check("threads", True, detail)


_LOCK_LINE = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;([^\\]*))?"
)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path | None = None) -> dict[str, str]:
    """``name -> version`` of the lock ``scripts/install.sh`` installed (markers applied)."""
    try:
        text = (lock or installed_lock_path()).read_text()
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LOCK_LINE.match(line)
        if match and (not match[3] or Marker(match[3].strip()).evaluate()):
            found[normalize(match[1])] = match[2]
    return found


def check_packages() -> Check:
    locked = locked_versions()
    if not locked:
        return Check("packages", True, f"no lock at {installed_lock_path()} to compare with")
    wrong = []
    for name, version in locked.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name} missing (locked {version})")
            continue
        try:
            same = Version(installed) == Version(version)
        except InvalidVersion:
            same = installed == version
        if not same:
            wrong.append(f"{name} {installed} (locked {version})")
    if wrong:
        listed = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        return Check("packages", False, f"differ from the lock: {listed}", reinstall_command())
    return Check("packages", True, f"{len(locked)} packages as locked")
