# The two commands of the README:  `make demo`  (the main job)  and  `make test`  (the whole suite).
# Both create .venv on first use; every pip call goes through constraints.txt so torch stays the CPU build.
# --no-compile: byte-compiling all of torch took 70 of the install's 100 s; Python compiles what it imports.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip install -q --no-compile -c constraints.txt
# The demo needs the library, the text baseline and the server (the README's `umr serve` after it); the tests
# add the test tools and every optional backend on top, so a fresh `make demo` does not wait for them.
STAMP := $(VENV)/.umr-installed
DEV_STAMP := $(VENV)/.umr-dev-installed

.PHONY: demo test lint install browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0 -e ".[text,serve]"
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP) -e ".[dev]"
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/umr demo

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

# The browser test drives Debian's chromium through playwright (installed once, idempotent).
browser: $(DEV_STAMP)
	VENV=$(VENV) bash .ci/setup-browser.sh

# pytest exits 5 when it collected nothing: that is a broken suite, never a pass.
test: lint browser
	@$(PY) -m pytest -n 2 --dist loadgroup -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; exit 1; fi; exit $$rc
