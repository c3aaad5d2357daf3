# are-search: two entry points, each sets up its own virtual environment on first use.
#   make quickstart   a real fixed-mode search (fusion checkpoint, FBNELL, SQLite study) -> flags.yaml
#   make test         the test suite (real datasets, texts and checkpoints; see README)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared

# Tests and the quick start read real files from these roots; default to ../shared when it exists.
ifneq ($(wildcard $(SHARED)/datasets),)
export ARE_DATA_ROOT ?= $(abspath $(SHARED)/datasets)
export ARE_TEXT_ROOT ?= $(abspath $(SHARED)/relation_texts)
export ARE_CHECKPOINT_ROOT ?= $(abspath $(SHARED)/checkpoints)
endif

.PHONY: install test quickstart bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints/ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints/ci.txt -e '.[text,test,ray]'
	touch $@

test: install
	$(BIN)/python -m pytest -q

quickstart: install
ifeq ($(ARE_CHECKPOINT_ROOT),)
	@echo "note: no $(SHARED)/datasets here and ARE_DATA_ROOT, ARE_TEXT_ROOT, ARE_CHECKPOINT_ROOT are not set:" \
	      "are-search downloads what it needs from the public sources (README, Quick start, says how to point them at local copies)"
endif
	$(BIN)/are-search launch --dataset FBNELL --checkpoint fusion --mode fixed --trials 16 --flags flags.yaml

bench: install
	$(BIN)/python bench/eval_speed.py
	$(BIN)/python bench/search_speed.py

clean:
	rm -rf $(VENV) .pytest_cache
