# The two commands: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test demo lint install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,sandbox]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# The whole suite, on SQLite, or on the database DATABASE_URL names (e.g. PostgreSQL).
# The browser test (tests/browser) drives Debian's Chromium: without it, it is skipped (said here
# and in pytest's summary); `apt-get install chromium` to run it. Playwright never downloads one.
CHROMIUM ?= /usr/bin/chromium
test: $(STAMP)
	@test -x "$(CHROMIUM)" || echo "make test: NOTE: $(CHROMIUM) is missing, so the browser test" \
		"(tests/browser) will be SKIPPED. Install it with: apt-get install chromium"
	WAGTAIL_TASKS_CHROMIUM="$(CHROMIUM)" $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# The sandbox site on 127.0.0.1:8000 with a database-backend worker and a local SMTP server.
demo: $(STAMP)
	$(BIN)/python -m sandbox.demo
