# One command each: `make test` and `make demo` install what they need, then run.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := clang-16 llvm-16 bpftool libbpf-dev gcc g++ make
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck deps venv bench clean fuzz

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,demo]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks fuzz
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: deps venv lint
	$(VENV)/bin/pytest -q

demo: deps venv
	$(VENV)/bin/pybpf demo --seconds 10

# Coverage-guided (atheris) for FUZZ_SECONDS per target, then FUZZ_CASES mutation cases each.
FUZZ_SECONDS ?= 60
FUZZ_CASES ?= 2000
FUZZ_JOBS ?= 1

fuzz: deps venv
	$(PY) -m pip install -q -e '.[fuzz]'
	$(PY) -m fuzz.seed
	status=0; \
	$(PY) -m fuzz.run_atheris --seconds $(FUZZ_SECONDS) || status=1; \
	$(PY) -m fuzz.mutate --cases $(FUZZ_CASES) --jobs $(FUZZ_JOBS) || status=1; \
	exit $$status

bench: deps venv
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
