# warmline: the two commands of the quick start are `make dev` and `make test`.
# Both create and reuse .venv themselves; nothing else is installed by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint style types imports tests coldstart bench mutation clean chromium docs node

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "warmline needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the package metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,test,docs]'
	@touch $(STAMP)

# PORT=3002 (or WARMLINE_PORT in the environment) moves the emulator off 3001.
dev: $(STAMP)
	$(BIN)/warmline dev --config examples/agent/warmline.toml $(if $(PORT),--port $(PORT))

test: lint docs tests coldstart package-check

lint: style types imports

style: $(STAMP)
	$(BIN)/ruff check src tests bench examples scripts
	$(BIN)/ruff format --check src tests bench examples scripts

types: $(STAMP)
	$(BIN)/mypy

# The layer contract (pyproject.toml [tool.importlinter]; docs/architecture.md).
imports: $(STAMP)
	$(BIN)/lint-imports

# The browser tests use Debian's chromium (never a browser download): installed here when
# missing and running as root (CI, the dev machines); otherwise they skip with the reason.
chromium:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "chromium missing: browser tests will be skipped (as root: apt-get install -y chromium)"; fi; }

# The Node.js runtime tests (and nodejs*.x functions under warmline dev) use Debian's nodejs and
# npm: installed here when missing and running as root; otherwise those tests skip with the reason.
node:
	@command -v node >/dev/null && command -v npm >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; \
	  else echo "node/npm missing: Node.js runtime tests will be skipped (as root: apt-get install -y nodejs npm)"; fi; }

# pytest exits 5 when it collected no test; make treats that as a failure, as it should.
tests: $(STAMP) chromium node sam-cli
	$(BIN)/python -m pytest -q

# The sample handlers' cold start, in Lambda's init order, held to a budget (issue 7).
coldstart: $(STAMP)
	$(BIN)/warmline coldstart app.handler --path examples/echo --lambda --runs 11 --budget-ms 40
	$(BIN)/warmline coldstart app.handler --path examples/agent --lambda --runs 11 --budget-ms 40

# The documentation site in site/ (mkdocs.yml): strict, so a broken link or anchor, a page
# left out of the nav or a docstring griffe cannot read fails the build (never with --quiet,
# which hides the warnings strict mode counts).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# SAM CLI for `sam validate --lint` of the rendered templates, in a venv of its own (its pins
# clash with the project's); the test skips with the reason when it is missing.
SAM_TOOL := $(HOME)/.cache/warmline-tools/sam
.PHONY: sam-cli
sam-cli: $(SAM_TOOL)/bin/sam
$(SAM_TOOL)/bin/sam:
	$(PYTHON) -m venv $(SAM_TOOL)
	$(SAM_TOOL)/bin/python -m pip install --quiet 'aws-sam-cli>=1.140,<2'

# The container image's lock (deploy/container/requirements.txt): requirements.in pinned with
# hashes by pip-compile running on Python 3.12, the image's (and Lambda's) Python.
PIP_TOOLS := $(HOME)/.cache/warmline-tools/pip-tools
LOCK_PYTHON ?= python3.12
.PHONY: container-lock
container-lock:
	@test -x $(PIP_TOOLS)/bin/pip-compile || { $(LOCK_PYTHON) -m venv $(PIP_TOOLS) && \
	  $(PIP_TOOLS)/bin/python -m pip install --quiet 'pip-tools>=7.4,<8'; }
	cd deploy/container && $(PIP_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	  --strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.txt \
	  requirements.in

# The test suite on every Python from 3.11 to 3.13 found here (PATH, then pyenv), each in
# .venv-matrix/3.X; versions not installed are reported as skipped. CI runs `make test` only.
.PHONY: test-matrix
test-matrix: $(STAMP)
	$(BIN)/python scripts/test_matrix.py $(PYTEST_ARGS)

# The sdist and wheel as the package index sees them: build, twine check --strict, metadata,
# and the wheel in a fresh venv without extras (scripts/package_check.py).
.PHONY: package-check
package-check: $(STAMP)
	$(BIN)/python scripts/package_check.py

bench: $(STAMP)
	$(BIN)/python bench/import_cost.py

# Mutation testing: each module of [tool.warmline.mutation] in pyproject.toml against its own
# tests, one at a time (CPU-heavy), with a per-module score table; fails under fail_under.
# MODULES=core/routing.py limits the run; see docs/testing.md.
mutation: $(STAMP)
	$(BIN)/python scripts/mutation.py $(MODULES)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .mutation
