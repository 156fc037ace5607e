#!/usr/bin/env bash
# Every check, in one place: formatting, lint, types, then the test suite.
#   bash scripts/check.sh            everything (what `make test` and CI run)
#   bash scripts/check.sh --fast     the same checks, tests that load no model only
# Any other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
select=()
if [ "${1:-}" = "--fast" ]; then
  shift
  select=(-m "not model")
fi
"$bin/ruff" format --check src tests bench scripts
"$bin/ruff" check src tests bench scripts
"$bin/mypy"
"$bin/lint-imports"  # the import contract: [tool.importlinter] in pyproject.toml
"$bin/python" -m pytest "${select[@]}" "$@"
