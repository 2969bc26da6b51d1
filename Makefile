# lab4: `make report` is the main job, `make test` the test suite. Every target sets itself up.
SHELL := /bin/bash
PY := .venv/bin/python
PROFILE ?= quick
DATA ?=
RUNS ?= runs/$(PROFILE)
GRID ?= experiments.yaml
JOBS ?= 3
export LAB4_DATA := $(DATA)
# the venv's own `lab4` kernel first, whatever other checkouts registered per user
export JUPYTER_PATH := $(CURDIR)/.venv/share/jupyter

.PHONY: setup tex test demo experiments figures html pdf report lab bench clean

setup: .venv/.installed

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name lab4 --display-name "Python (lab4)" >/dev/null
	touch $@

# XeLaTeX, latexmk, CJK fonts and pdftotext from Debian, when we may install them.
tex:
	@bash scripts/install_tex.sh

test: setup tex
	$(PY) -m pytest -q

demo: setup
	$(PY) -m lab4 make-data --preset small
	$(PY) -m lab4 train --profile quick --name demo --run-dir runs/demo
	$(PY) -m lab4 evaluate --run-dir runs/demo
	@echo "demo: runs/demo/psnr_per_frame.png"

experiments: setup
	$(PY) -m lab4.experiments --grid $(GRID) --profile $(PROFILE) --runs $(RUNS) --jobs $(JOBS)

figures: setup
	$(PY) -m lab4.experiments --figures --runs $(RUNS)

html: setup
	$(PY) -m lab4.experiments --html --runs $(RUNS)

pdf: setup tex
	bash scripts/build_pdf.sh

report: experiments figures html pdf

lab: setup
	.venv/bin/jupyter lab notebooks/

bench: setup
	$(PY) -m lab4.bench

clean:
	rm -rf runs report/build report/generated
