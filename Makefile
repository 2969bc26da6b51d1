# lab4: `make report` is the main job, `make test` the test suite. Every target sets itself up.
SHELL := /bin/bash
# The environment every target runs in: the active one (an activated venv, or a conda environment other than
# base), else .venv, built here. Either way `make setup` installs -e .[dev] into it and registers its `lab4`
# kernel; in an active environment it records the checkout it installed, so another clone reinstalls.
ifneq ($(strip $(VIRTUAL_ENV)),)
ACTIVE_ENV := $(abspath $(VIRTUAL_ENV))
else ifneq ($(strip $(CONDA_PREFIX)),)
# conda's base (named so, or holding conda itself in condabin/) is conda's home, not a project's
ifeq ($(filter base,$(CONDA_DEFAULT_ENV))$(wildcard $(CONDA_PREFIX)/condabin),)
ACTIVE_ENV := $(abspath $(CONDA_PREFIX))
endif
endif
ifeq ($(ACTIVE_ENV),$(CURDIR)/.venv)
ACTIVE_ENV :=
endif
ifdef ACTIVE_ENV
ENV_DIR := $(ACTIVE_ENV)
BIN := $(ACTIVE_ENV)/bin
INSTALLED := $(ACTIVE_ENV)/.lab4-installed
else
ENV_DIR := $(CURDIR)/.venv
BIN := .venv/bin
INSTALLED := .venv/.installed
endif
PY := $(BIN)/python
PROFILE ?= quick
DATA ?=
RUNS ?= runs/$(PROFILE)
GRID ?= experiments.yaml
# runs at once (empty: the driver's default, one per GPU or else 3); DASK_SCHEDULER=tcp://host:8786 uses that cluster
JOBS ?=
DASK_SCHEDULER ?=
# DATA=path (or an exported LAB4_DATA when DATA is not given): made absolute here, against the folder make
# runs in, because the notebooks run in notebooks/
ifneq ($(strip $(DATA)),)
export LAB4_DATA := $(abspath $(DATA))
else ifneq ($(strip $(LAB4_DATA)),)
export LAB4_DATA := $(abspath $(LAB4_DATA))
endif
# the environment's own kernels first, whatever other checkouts registered per user: its `lab4`, and its
# `python3` (the notebooks' own kernelspec), which runs its python
export JUPYTER_PATH := $(ENV_DIR)/share/jupyter

.PHONY: setup tex browser real-footage test demo experiments figures html pdf report study study-extra lab bench gpu-wheels clean

setup: $(INSTALLED)
	@bash scripts/install_git_filters.sh $(ENV_DIR)/bin/python

ifdef ACTIVE_ENV
# the user's environment: no venv and no pip upgrade; again when it was set up from another checkout
$(INSTALLED): pyproject.toml $(if $(filter-out $(CURDIR),$(shell cat $(INSTALLED) 2>/dev/null)),FORCE)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name lab4 --display-name "Python (lab4)" >/dev/null
	echo '$(CURDIR)' >$@
else
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name lab4 --display-name "Python (lab4)" >/dev/null
	touch $@
endif
FORCE:

# XeLaTeX, latexmk, CJK fonts and pdftotext from Debian, when we may install them.
tex:
	@bash scripts/install_tex.sh

# Chromium and ChromeDriver from Debian for tests/test_browser.py, when we may install them.
browser:
	@bash scripts/install_browser.sh

# OpenCV's sample video vtest.avi (Debian's opencv-doc) for lab4/datasets/real_footage.py and tests/test_real_footage.py.
real-footage:
	@bash scripts/install_real_footage.sh

# two workers that take tests from each other's queue when idle (worksteal), so that the suite's kernels and
# subprocesses keep both cores busy to the end
test: setup tex browser real-footage
	$(PY) -m ruff check lab4 tests scripts
	$(PY) -m ruff format --check lab4 tests scripts
	$(PY) -m pytest -q -n 2 --dist worksteal

demo: setup
	$(PY) -m lab4 make-data --preset small
	$(PY) -m lab4 train --profile quick --name demo --run-dir runs/demo --resume
	@echo "demo: runs/demo/psnr_per_frame.png"

experiments: setup
	$(PY) -m lab4 grid --grid $(GRID) --profile $(PROFILE) --runs $(RUNS) $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(DASK_SCHEDULER),--scheduler $(DASK_SCHEDULER))

figures: setup
	$(PY) -m lab4 report figures --runs $(RUNS)

html: setup
	$(PY) -m lab4 report html --runs $(RUNS)

pdf: setup tex
	bash scripts/build_pdf.sh

report: experiments figures html pdf

# The lab's question with the budget on seeds (study.yaml, lab4/grid/study.py): the three KL schedules, 8 seeds each,
# at twice the quick budget under the lab's loss, into runs/study/, exported to results/study/ for the report.
# Resumable; within 90 minutes on 2 cores without native bf16. `make report` reads results/study/, never runs this.
study: setup
	$(PY) -m lab4 study --runs runs/study --out results/study $(if $(JOBS),--jobs $(JOBS)) --command "make study"

# The template's quirks and real footage (study-extra.yaml): not part of `make study`'s 90 minutes.
study-extra: setup real-footage
	@test -f data/real-vtest/real_footage.json || $(PY) -m lab4 real-footage build --out data/real-vtest
	$(PY) -m lab4 study --grid study-extra.yaml --runs runs/study-extra --out results/study-extra \
		$(if $(JOBS),--jobs $(JOBS)) --command "make study-extra"

# JupyterLab on the repository with the `lab4` kernel as default; it opens the explorer when there are runs,
# else the training notebook. Outputs never reach git (the nbstripout filter from `make setup`).
LAB_NB = $(if $(wildcard runs/*/last.pt runs/*/*/last.pt runs/*/*/*/last.pt),04_explore,02_train)
lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks/$(LAB_NB).ipynb \
		--MappingKernelManager.default_kernel_name=lab4 $(if $(filter 0,$(shell id -u)),--allow-root)

bench: setup
	$(PY) -m lab4 bench

# Wheels the GPU device machine lacks (papermill, ipykernel, Dask, ...) into .whl/, for scripts/gpu_session.sh
gpu-wheels: setup
	PY=$(PY) bash scripts/build_wheels.sh

clean:
	rm -rf runs report/build report/generated
