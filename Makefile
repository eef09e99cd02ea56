# The two entry points of the README; both set up what they need first.
.PHONY: setup run test lint

setup:
	bash scripts/setup.sh

## run: the whole workflow on the default config (CPU by default; CUDA when present)
run: setup
	.venv/bin/snakemake --cores all

## test: unit tests and the end-to-end smoke workflow
test: setup
	.venv/bin/pytest

lint:
	.venv/bin/ruff check src tests workflow/scripts notebooks
	.venv/bin/ruff format --check src tests workflow/scripts notebooks
