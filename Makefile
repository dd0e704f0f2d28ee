# Every target creates .venv when it is missing, so a fresh clone needs only `make test` or `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras of the training distribution; on a GPU host `make EXTRAS=gpu,test ...` adds TensorFlow's CUDA wheels.
EXTRAS ?= test
STAMP := $(VENV)/.installed

.PHONY: venv test test-slow bench demo clean

venv: $(STAMP)

# Both distributions in one command: the runtime (./serving) and training, which depends on it.
$(STAMP): setup.py serving/setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./serving -e ".[$(EXTRAS)]"
	$(PY) -m pip check
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -s -m slow tests

bench: $(STAMP)
	$(PY) -m benchmarks.run --out results

demo: $(STAMP)
	$(PY) -m rise_tf.demo

clean:
	rm -rf $(VENV) build *.egg-info
