# The two commands a new user runs (see README.md).
.PHONY: serve test install install-dev bench

serve: install
	.venv/bin/ember serve

test: install-dev
	bash scripts/check.sh

install:
	bash scripts/install.sh

install-dev:
	bash scripts/install.sh --dev

bench: install-dev
	.venv/bin/python bench/serve.py
