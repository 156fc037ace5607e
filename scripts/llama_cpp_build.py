"""Choose llama.cpp's build flags for the CPU this install runs on.

llama-cpp-python's default build uses ``-march=native``. On a CPU that reports AMX
(Sapphire/Granite Rapids) that compiles llama.cpp's AMX matmul, which dies in ``ldtilecfg``
in VMs that do not grant the process AMX tile state (llama.cpp #20824, ollama #17249).
So the build turns ``GGML_NATIVE`` off and names each instruction set this CPU reports,
one cmake option each; AMX only when a probe (a tiny program that asks the kernel for tile
state and runs ``ldtilecfg``) shows it works here.

Prints, as JSON: the cmake arguments, the features they came from, whether AMX was probed,
and a ``key`` (a hash of the package version, the arguments and the compiler) that names the
cached wheel, so a wheel built for other CPU features is never reused.

Standard library only: it runs before the virtual environment has anything in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# /proc/cpuinfo flag -> the ggml cmake option it turns on (ggml/CMakeLists.txt).
X86_OPTIONS: dict[str, str] = {
    "sse4_2": "GGML_SSE42",
    "avx": "GGML_AVX",
    "avx2": "GGML_AVX2",
    "bmi2": "GGML_BMI2",
    "fma": "GGML_FMA",
    "f16c": "GGML_F16C",
    "avx_vnni": "GGML_AVX_VNNI",
    "avx512f": "GGML_AVX512",
    "avx512vbmi": "GGML_AVX512_VBMI",
    "avx512_vnni": "GGML_AVX512_VNNI",
    "avx512_bf16": "GGML_AVX512_BF16",
}
AMX_OPTIONS: dict[str, str] = {
    "amx_tile": "GGML_AMX_TILE",
    "amx_int8": "GGML_AMX_INT8",
    "amx_bf16": "GGML_AMX_BF16",
}

AMX_PROBE = r"""
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
struct tile_config {
    unsigned char palette_id, start_row, reserved[14];
    unsigned short colsb[16];
    unsigned char rows[16];
};
int main(void) {
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 3;
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    cfg.rows[0] = 16;
    cfg.colsb[0] = 64;
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_release();
    return 0;
}
"""


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def amx_works() -> tuple[bool, str]:
    """Compile and run the probe in a child process: a crash there is a 'no'."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        return False, "no C compiler to probe with"
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp, "amx.c"), Path(tmp, "amx")
        src.write_text(AMX_PROBE)
        built = subprocess.run(
            [cc, "-O1", "-mamx-tile", str(src), "-o", str(exe)], capture_output=True
        )
        if built.returncode != 0:
            return False, "the compiler cannot build AMX code"
        ran = subprocess.run([str(exe)], capture_output=True)
    if ran.returncode == 0:
        return True, "the probe ran ldtilecfg"
    if ran.returncode < 0:
        return False, f"the probe died with signal {-ran.returncode} (AMX tile state not granted)"
    return False, "the kernel refused AMX tile state (arch_prctl)"


def compiler_id() -> str:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or "cc"
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def choose(version: str) -> dict[str, object]:
    machine = platform.machine()
    flags = cpu_flags()
    options: dict[str, bool] = {}
    amx_note = "not reported by this CPU"
    if machine in ("x86_64", "AMD64"):
        options = {opt: flag in flags for flag, opt in X86_OPTIONS.items()}
        if any(flag in flags for flag in AMX_OPTIONS):
            ok, amx_note = amx_works()
            for flag, opt in AMX_OPTIONS.items():
                options[opt] = ok and flag in flags
        cmake = ["-DGGML_NATIVE=OFF"] + [
            f"-D{o}={'ON' if on else 'OFF'}" for o, on in options.items()
        ]
    else:
        # Arm and others: llama.cpp's native detection has no AMX-like trap; keep it.
        cmake = []
        amx_note = f"not applicable on {machine}"
    extra = os.environ.get("EMBER_LLAMA_CMAKE_ARGS", "").split()
    cmake += extra
    key_src = json.dumps([version, machine, cmake, compiler_id()])
    return {
        "package": f"llama-cpp-python=={version}",
        "machine": machine,
        "cmake_args": " ".join(cmake),
        "enabled": sorted(o for o, on in options.items() if on),
        "disabled": sorted(o for o, on in options.items() if not on),
        "amx": amx_note,
        "compiler": compiler_id(),
        "key": hashlib.sha256(key_src.encode()).hexdigest()[:16],
    }


def main() -> None:
    version = sys.argv[1] if len(sys.argv) > 1 else "0.3.36"
    print(json.dumps(choose(version), indent=2))


if __name__ == "__main__":
    main()
