# fyc — two commands: `make demo` (toy world: data -> fine-tune FYC from the shipped toy base -> animate -> preview -> evaluate) and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= outputs/demo
# Extra pytest arguments, e.g. make test PYTEST_ARGS=tests/test_app_browser.py
PYTEST_ARGS ?=

.PHONY: install browser demo test test-fast clean

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (fyc needs Python 3.11; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes (idempotent).
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install --quiet -e '.[test]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import fyc, torch, diffusers, lightning, hydra, decord" || { echo "error: install failed"; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium + chromedriver (apt) for tests/test_app_browser.py; idempotent. Installs as root or with
# passwordless sudo; otherwise prints how to enable the browser test, which `make test` then skips.
browser:
	bash scripts/install_browser.sh

demo: install
	$(PY) scripts/demo.py --out $(DEMO_DIR)

test: install browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install browser
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf outputs .pytest_cache
