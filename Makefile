# The two commands a new user runs (see README.md).
.PHONY: serve test test-fast install install-dev bench

serve: install
	.venv/bin/ember serve

test: install-dev
	bash scripts/check.sh

# While developing: the same checks, only the tests that load no model (about two minutes).
test-fast: install-dev
	bash scripts/check.sh --fast

install:
	bash scripts/install.sh

install-dev:
	bash scripts/install.sh --dev

bench: install-dev
	.venv/bin/python bench/serve.py
	.venv/bin/python bench/foundation.py
