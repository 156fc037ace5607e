#!/usr/bin/env bash
# Every check, in one place: formatting, lint, types, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
"$bin/ruff" format --check src tests bench scripts
"$bin/ruff" check src tests bench scripts
"$bin/mypy"
"$bin/python" -m pytest "$@"
