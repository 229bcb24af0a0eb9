# Membership Operations Portal — the two commands are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Tests run on PostgreSQL (row locks, COPY, concurrency); override DATABASE_URL to change.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal
DEMO_MEMBERS ?= 2000
PYTEST_WORKERS ?= 2
# Where `make run` and `make serve` listen: `make run PORT=8123` (HOST=0.0.0.0 for others)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve seed test test-sqlite lint format worker beat messages bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo --members $(DEMO_MEMBERS) --if-empty
	$(BIN)/python manage.py run_nightly
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

serve: install
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The suite on PostgreSQL: scripts/services.py uses the PostgreSQL and Redis that answer, or
# starts throwaway ones under var/ (stopped afterwards), or says what to install.
test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python scripts/services.py run -- \
		$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

test-sqlite: install
	DATABASE_URL=sqlite:///$(CURDIR)/var/test.sqlite3 $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

worker: install
	$(BIN)/celery -A config worker --loglevel=INFO --concurrency=2

beat: install
	$(BIN)/celery -A config beat --loglevel=INFO

messages: install
	$(BIN)/python manage.py makemessages -l zh_Hans -l en --ignore=.venv --ignore=bench --ignore=tests --ignore=var
	$(BIN)/python manage.py compilemessages --ignore=.venv

bench: install
	$(BIN)/python bench/feeds.py

clean:
	rm -rf $(VENV) db.sqlite3 var
