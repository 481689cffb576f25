# Two commands on a fresh clone: `make demo` and `make test`. Both create the virtualenv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Time budget per test tier, in seconds (the whole run stays under 30 minutes on 2 cores); the slower tiers
# list their slowest tests, so a run that nears the budget says where its time went.
UNIT_BUDGET        ?= 300
INTEGRATION_BUDGET ?= 1200
E2E_BUDGET         ?= 1260

.PHONY: demo test test-unit test-integration test-e2e install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/trueup demo

test: test-unit test-integration test-e2e

test-unit: $(STAMP)
	timeout $(UNIT_BUDGET) $(PY) -m pytest tests/unit -q -p no:cacheprovider

test-integration: $(STAMP)
	timeout $(INTEGRATION_BUDGET) $(PY) -m pytest tests/integration -q -p no:cacheprovider --timeout 600 --durations=12

test-e2e: $(STAMP)
	timeout $(E2E_BUDGET) $(PY) -m pytest tests/e2e -q -p no:cacheprovider --timeout 500 --durations=15

clean:
	-$(VENV)/bin/trueup stack down
	rm -rf $(VENV) .trueup
