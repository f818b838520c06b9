# `make demo` runs the acme example server, `make test` runs every check, `make check` is the fast
# everyday subset. Each installs into .venv from the committed locks in requirements/ (exact
# versions, verified hashes), so a fresh clone gets the same toolchain on every machine and day.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
LATEST := .venv-latest
SOURCES := src tests examples bench

.PHONY: demo test check lint lock test-latest dist-check clean

# uv itself comes from the lock (hash-checked by pip), then installs everything else in seconds.
$(UV): requirements/bootstrap.txt
	@echo "==> creating $(VENV) and installing uv from requirements/bootstrap.txt"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps \
		--require-hashes -r requirements/bootstrap.txt
	@touch $(UV)

# The demo needs the runtime dependencies only: no test tools.
$(VENV)/.demo: $(UV) requirements/demo.txt pyproject.toml
	@echo "==> installing the runtime dependencies (requirements/demo.txt) and the project"
	@$(UV) pip install --quiet --python $(BIN)/python --require-hashes -r requirements/demo.txt
	@$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $@

# sync: exactly the lock, nothing left over from an earlier install.
$(VENV)/.test: $(UV) requirements/test.txt pyproject.toml
	@echo "==> installing the locked test toolchain (requirements/test.txt) and the project"
	@$(UV) pip sync --quiet --python $(BIN)/python --require-hashes requirements/test.txt
	@$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	@echo "==> starting the acme example (examples/acme) on the embedded SQLite policy"
	$(BIN)/python -m examples.acme

lint: $(VENV)/.test
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy

# Lint plus every test that needs no service and no subprocess server: for everyday work.
check: lint
	$(BIN)/python -m pytest -q -m "not services and not slow" -p no:cacheprovider -n 2 --dist loadfile

# The whole gate: what CI runs. Tests that start servers and processes (marked serial) run alone,
# after the rest ran on both cores (one file per worker).
test: lint
	$(BIN)/python -m pip check
	$(BIN)/python -m pytest -m "not serial" -n 2 --dist loadfile
	$(BIN)/python -m pytest -m serial
	$(MAKE) --no-print-directory dist-check

# The sdist and wheel build from the locked setuptools and install into an empty venv, where a
# guarded app answers 200/401/403.
dist-check: $(VENV)/.test
	@rm -rf build dist .venv-dist
	@echo "==> building the sdist and wheel with the locked setuptools"
	@$(BIN)/python -m build --no-isolation --sdist --wheel --outdir dist . >build.log 2>&1 \
		|| { cat build.log; exit 1; }
	@rm -f build.log
	@echo "==> installing the wheel into an empty venv and smoke-testing it"
	@$(PYTHON) -m venv .venv-dist
	@$(UV) pip install --quiet --python .venv-dist/bin/python --require-hashes -r requirements/demo.txt
	@$(UV) pip install --quiet --python .venv-dist/bin/python --no-deps dist/*.whl
	@cd /tmp && $(CURDIR)/.venv-dist/bin/python $(CURDIR)/tests/dist_smoke.py $(CURDIR)/dist
	@rm -rf .venv-dist build

# Refresh the locks: the newest releases within pyproject.toml's floors, hashed.
lock: $(UV)
	$(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		pyproject.toml requirements/tools.in --extra test -o requirements/test.txt
	$(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		pyproject.toml requirements/tools.in -c requirements/test.txt -o requirements/demo.txt
	echo "uv" | $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		- -c requirements/test.txt -o requirements/bootstrap.txt

# The whole suite against today's newest releases (unlocked), outside the CI gate: drift shows
# here before it reaches our users.
test-latest:
	@echo "==> $(LATEST): the newest releases within pyproject.toml's floors"
	@test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[test]'
	$(LATEST)/bin/ruff check $(SOURCES)
	$(LATEST)/bin/ruff format --check $(SOURCES)
	$(LATEST)/bin/mypy
	$(LATEST)/bin/python -m pip check
	$(LATEST)/bin/python -m pytest

clean:
	rm -rf $(VENV) $(LATEST) .venv-dist build build.log dist .pytest_cache .mypy_cache .ruff_cache
