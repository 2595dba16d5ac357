# Two-command quick start: `make run` benchmarks, `make test` tests. Each creates .venv if missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint checkpoints clean publish bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/advbench run

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check advbench plugins tests
	$(BIN)/ruff format --check advbench plugins tests

# Re-create the pretrained checkpoints shipped inside the package (see README).
checkpoints: $(STAMP)
	$(BIN)/advbench train mlp --ship

clean:
	rm -rf $(VENV) build *.egg-info

# The published benchmark in reports/published: every built-in model × attack, whole test set.
publish: $(STAMP)
	$(BIN)/advbench run --set pgd.eps=0.05,0.1,0.2,0.3 --out reports/published
