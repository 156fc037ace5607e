#!/usr/bin/env bash
# Create .venv and install Ember from the lock (with --dev: and its test tools).
#
# Everything comes from requirements/*.lock, exact versions with hashes (pip --require-hashes);
# update the locks on purpose with scripts/lock.sh. llama-cpp-python is compiled for this CPU
# with the flags scripts/llama_cpp_build.py chooses (no -march=native, no AMX unless a probe
# shows it works) and cached under a key made of those flags, so a wheel built for another
# CPU is never reused. Safe to re-run: it does nothing when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

lock=requirements/runtime.lock
[ "${1:-}" = "--dev" ] && lock=requirements/dev.lock
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

build=$("$python" scripts/llama_cpp_build.py)
field() { printf '%s' "$build" | "$python" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
key=$(field key)
cmake_args=$(field cmake_args)

[ -x .venv/bin/python ] || "$python" -m venv .venv

# The tests (--dev) need two Debian packages: chromium, which the console's browser tests
# drive through Playwright (whose own browser download cannot be relied on), and haproxy,
# the load balancer in front of the replica tests (tests/test_replicas.py). Install with apt
# what is missing.
if [ "${1:-}" = "--dev" ] && command -v apt-get >/dev/null; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  if [ ${#missing[@]} -gt 0 ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
fi
stamp=".venv/.ember-install-$(cat "$lock" requirements/no-deps.lock pyproject.toml scripts/install.sh |
  sha256sum | cut -c1-12)-$key"
[ -f "$stamp" ] && exit 0

pip=(.venv/bin/python -m pip --disable-pip-version-check)

# 1. llama-cpp-python, built for this CPU (about 5 minutes on 2 cores the first time).
cache="${EMBER_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ember/wheels}/$key"
wheel=$(ls "$cache"/llama_cpp_python-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  echo "Compiling llama-cpp-python for this CPU: $cmake_args"
  sdist=$(mktemp)
  tmp=$(mktemp -d)
  trap 'rm -rf "$sdist" "$tmp"' EXIT
  grep -A1 '^llama-cpp-python==' "$lock" >"$sdist"
  # --no-cache-dir: pip's own cache keys a built wheel by version alone.
  CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
    "${pip[@]}" wheel -q --no-cache-dir --no-deps --require-hashes -r "$sdist" -w "$tmp"
  mkdir -p "$cache"
  mv "$tmp"/llama_cpp_python-*.whl "$cache/"
  printf '%s\n' "$build" >"$cache/build.json"
  wheel=$(ls "$cache"/llama_cpp_python-*.whl | head -n1)
fi
"${pip[@]}" install -q --no-deps --force-reinstall "$wheel"
cp "$cache/build.json" .venv/llama-cpp-build.json

# 2. Everything else, exactly as locked (llama-cpp-python is already satisfied).
"${pip[@]}" install -q --require-hashes --no-deps -r "$lock"
"${pip[@]}" install -q --require-hashes --no-deps -r requirements/no-deps.lock

# 3. Ember itself, editable, built with the locked setuptools.
"${pip[@]}" install -q --no-deps --no-build-isolation -e .
cp "$lock" .venv/ember-installed.lock
rm -f .venv/.ember-install-*
touch "$stamp"
