# Two set-up commands: `make demo` (install + the demo) and `make test` (install + the tests).
PYTHON ?= python3
VENV ?= .venv
# extras installed with beadseg: dev for the tests (it holds train: torch); the demo fine-tunes,
# so `make demo` installs train; CI adds napari-test (napari + pytest-qt for the plugin's tests)
EXTRAS ?= dev
PY := $(VENV)/bin/python
BEADSEG := $(VENV)/bin/beadseg
comma := ,
# one stamp per set of extras: `make demo` then `make test` adds dev's packages
STAMP := $(VENV)/.installed-$(subst $(comma),+,$(EXTRAS))

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned; where pip reads PyPI itself its Linux wheel pulls multi-GB CUDA
	# libraries: make TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu" gets the CPU one
	$(PY) -m pip install -q torch==2.13.0 $(TORCH_INDEX)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	# bioimageio.core for the export test, without its spec==0.5.12.0 pin (see pyproject's dev)
	case ",$(EXTRAS)," in *,dev,*) $(PY) -m pip install -q --no-deps "bioimageio.core==0.11.0";; esac
	touch $@

install: $(STAMP)

demo:
	$(MAKE) install EXTRAS=train
	$(BEADSEG) demo --out beadseg-demo

test: install lint
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	PY=$(PY) benchmarks/run_all.sh

clean:
	rm -rf $(VENV) beadseg-demo .pytest_cache
