# Two commands do all set-up on a fresh machine with Python 3.11:
#   make train            create .venv, install, train on CIFAR-10, write outputs/
#   make train DATA=path  the same on your own data (folder, label file, map file, CTF, packed dir, archive)
#   make test             create .venv if missing, run the whole suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_CIFAR := ../shared/data/cifar10-png.tar.gz
# Default data: the shared CIFAR-10 archive where it exists, else the official download.
DATA ?= $(if $(wildcard $(SHARED_CIFAR)),$(SHARED_CIFAR),cifar10)
MODEL ?= fast
OUTPUTS ?= outputs
TRAIN_ARGS ?=

.PHONY: venv train test lint notebooks bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,tensorflow]'
	touch $@

venv: $(VENV)/.installed

train: venv
	$(PY) train.py --data $(DATA) --model $(MODEL) --outputs $(OUTPUTS) $(TRAIN_ARGS)

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Run every notebook with its default parameters and render it to build/notebooks/<name>.html.
notebooks: venv
	for nb in notebooks/*.ipynb; do \
		$(PY) -m amlvision.testing.notebooks $$nb --html build/notebooks/$$(basename $$nb .ipynb).html || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
