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
# No merge left half done: a conflict marker anywhere in the tracked files fails the check.
if git grep -n -E '^(<<<<<<<|>>>>>>>)( |$)' -- . ':!*.lock' >&2; then
  echo "conflict markers above: finish the merge" >&2
  exit 1
fi
"$bin/ruff" format --check src tests bench scripts
"$bin/ruff" check src tests bench scripts
"$bin/mypy"
"$bin/lint-imports"  # the import contract: [tool.importlinter] in pyproject.toml
"$bin/python" -m pytest "${select[@]}" "$@"
