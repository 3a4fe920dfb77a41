# Two commands: `make run` and `make test`. Everything else is set up by them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2
THREADS ?= 16
export HOST PORT

.PHONY: run test lint fuzz bench bench-load scan messages translations venv assets chromium haproxy wrk clean

venv: $(VENV)/.installed

# Front-end packages from the npm registry, pinned by package-lock.json, served by us.
assets: static/.compressed app/translations/.compiled

STATIC_SOURCES := $(filter-out %.gz %.br,$(wildcard static/*.svg static/*/*.css static/*/*.js))

# gzip (by Zopfli: app/plumbing/static_compression.py) and brotli copies for WhiteNoise to serve; remade when a
# source changes.
static/.compressed: static/vendor/htmx.min.js $(STATIC_SOURCES) $(VENV)/.installed
	$(BIN)/python -m app.plumbing.static_compression static
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

static/vendor/htmx.min.js: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Debian's Chromium headless shell for the browser tests (Playwright cannot download browsers here):
# the same engine without the desktop browser, which no test needs, and faster to start and run.
chromium:
	@test -x /usr/lib/chromium/chromium-headless-shell || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null)

# Debian's HAProxy for the scale-out test (tests/serving/test_scale_out.py), which starts it itself on loopback
# in front of two app servers, as docs/operating.md's recipe does; the package's own service is not used.
haproxy:
	@test -x /usr/sbin/haproxy || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null)

# Debian's wrk, the load generator for `make bench-load`.
wrk:
	@test -x /usr/bin/wrk || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)

# The server is Granian, chosen by `make bench-load` (bench/serving.py): slow clients do not hold its
# threads and it serves the most waiting widgets. No server access log: the app writes its own,
# without query strings. tests/support/servers.py starts the same command (a test compares them).
run: venv assets
	$(BIN)/flask --app app db upgrade
	$(BIN)/flask --app app passid demo
	$(BIN)/granian --interface wsgi --http 1 --host $(HOST) --port $(PORT) --workers $(WORKERS) --blocking-threads $(THREADS) --backlog 2048 --http1-header-read-timeout 10000 --respawn-failed-workers --workers-kill-timeout 5 --no-access-log wsgi:app

# Three pytest workers on two cores (pytest-xdist; a test file stays on one worker, so its module's server
# starts once): the suite waits on servers, browsers, sockets and PostgreSQL, and a third worker uses the
# time the cores sat idle while two waited. mypy (about 20 s from cold) runs beside pytest for the same
# reason; its verdict counts as much as the tests'. Prints the coverage of app/ (pytest-cov, in the
# test processes: see pyproject.toml) and the time `make test` took.
PYTEST_WORKERS ?= 3

test: venv assets chromium haproxy
	@started=$$(date +%s); \
	$(BIN)/ruff check app tests bench wsgi.py && $(BIN)/lint-imports || exit 1; \
	types=$$(mktemp); $(BIN)/mypy > $$types 2>&1 & types_pid=$$!; \
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --cov --cov-report=term:skip-covered; status=$$?; \
	wait $$types_pid; types_status=$$?; echo "mypy (run beside pytest):"; cat $$types; rm -f $$types; \
	[ $$status -eq 0 ] && status=$$types_status; \
	elapsed=$$(( $$(date +%s) - started )); \
	printf 'make test: %d min %02d s\n' $$((elapsed / 60)) $$((elapsed % 60)); \
	exit $$status

# Fuzzing with fresh randomness (`make test` replays fixed examples so CI stays reproducible).
fuzz: venv assets
	HYPOTHESIS_PROFILE=explore $(BIN)/pytest tests/fuzz

# Figures, never timed tests: sizes and latencies measured side by side in one run.
bench: venv assets
	$(BIN)/python -m bench.weight
	$(BIN)/python -m bench.poll
	$(BIN)/python -m bench.poll_cpu
	$(BIN)/python -m bench.approval
	$(BIN)/python -m bench.webhook_ack
	$(BIN)/python -m bench.flood
	$(BIN)/python -m bench.qr_render

# Under load (about 20 minutes): the serving setups compared (capacity and slow clients, about 10 minutes),
# awaiting widgets one machine holds (SQLite and PostgreSQL), then PASSID failing each way while 1,000 widgets poll.
bench-load: venv assets wrk
	$(BIN)/python -m bench.serving
	$(BIN)/python -m bench.capacity
	$(BIN)/python -m bench.faults

# Wapiti, the web vulnerability scanner for `make scan`, in a virtualenv of its own (Debian's 3.0.4
# cannot run its URL exclusions on Python 3.11).
.venv-scan/.installed: requirements-scan.txt
	test -x .venv-scan/bin/python || $(PYTHON) -m venv .venv-scan
	.venv-scan/bin/pip install --quiet -r requirements-scan.txt
	touch $@

# An outside opinion (not part of `make test`): Wapiti against `make run` in a network namespace
# with loopback only, at most SCAN_MINUTES (10) minutes; prints its findings (docs/security.md, "Scanned").
scan: venv assets .venv-scan/.installed
	bash security/scan.sh

# Text for translators (docs/languages-and-look.md): app/translations/messages.pot (what customers read) and
# staff.pot (branch counter, console), then every locale's .po brought up to date with them.
EXTRACT := $(BIN)/pybabel extract --no-wrap --sort-by-file -k _ -k gettext -k lazy_gettext -k ngettext:1,2 -k lazy_ngettext:1,2
messages: venv
	$(EXTRACT) -F babel-customer.cfg -o app/translations/messages.pot .
	$(EXTRACT) -F babel-staff.cfg -o app/translations/staff.pot .
	$(BIN)/pybabel update --no-wrap --no-fuzzy-matching -i app/translations/messages.pot -d app/translations -D messages
	$(BIN)/pybabel update --no-wrap --no-fuzzy-matching -i app/translations/staff.pot -d app/translations -D staff

# Compiled catalogues (.mo, not committed) and the pseudo-locale for layout tests; remade when a .po changes.
CATALOGUES := $(wildcard app/translations/*/LC_MESSAGES/*.po) $(wildcard app/translations/*.pot)
translations: app/translations/.compiled
app/translations/.compiled: $(CATALOGUES) app/pseudo_locale.py $(VENV)/.installed
	$(BIN)/pybabel compile --domain messages --directory app/translations
	$(BIN)/pybabel compile --domain staff --directory app/translations
	$(BIN)/python -m app.pseudo_locale
	touch $@

lint: venv
	$(BIN)/ruff check app tests bench wsgi.py
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .venv-scan .pytest_cache .ruff_cache .import_linter_cache
