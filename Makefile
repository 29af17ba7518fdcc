# Curious Robot: `make collect` runs the main job, `make test` the test suite.
# Both set everything up on first use (see tools/setup.sh).

VENV ?= .venv
PY := $(VENV)/bin/python
SETUP_INPUTS := requirements.txt setup.py tools/setup.sh \
	$(wildcard interfaces/*.txt interfaces/*.xml interfaces/msg/* interfaces/srv/* interfaces/action/*)

# collect defaults (override: make collect DURATION=600 ROBOTS=2)
DURATION ?= 300
ROBOTS ?= 1
STORE ?= data/replay.db
SEED ?= 0
PYTEST_ARGS ?=

.PHONY: setup test test-fast test-slow lint collect clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: $(SETUP_INPUTS)
	VENV=$(VENV) bash tools/setup.sh
	touch $@

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

# everything except the slow tier
test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

collect: setup
	mkdir -p $(dir $(STORE))
	$(VENV)/bin/curious-robot collect --duration $(DURATION) --robots $(ROBOTS) \
		--store $(STORE) --seed $(SEED)

clean:
	rm -rf build install log .pytest_cache

# collect -> train every variant -> evaluate -> results/table.md, chart.png, results.json
# (about 60 minutes on two cores; resumable: rerun to continue)
.PHONY: reproduce
reproduce: setup
	$(VENV)/bin/curious-robot reproduce

# the drone's numbers: crash data -> crash net -> flights in held-out rooms against
# straight and random-turn flight -> results/drone/ (results.json, chart.png, table.md);
# about 10 minutes on two cores, resumable. models/drone_crash.pt is the run's model file
# (runs/reproduce/drone-scale-1/drone_crash.pt; models/README.md).
.PHONY: drone-results
drone-results: setup
	$(VENV)/bin/curious-robot reproduce --mode drone --out results/drone
