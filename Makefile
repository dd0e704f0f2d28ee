# Every target creates .venv when it is missing, so a fresh clone needs only `make test` or `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# `cpu` picks the onnxruntime wheel; on a GPU host use `make EXTRAS=gpu,test ...` (never both).
EXTRAS ?= cpu,test
STAMP := $(VENV)/.installed

.PHONY: venv test test-slow bench demo clean

venv: $(STAMP)

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(PY) -m pip check
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -s -m slow tests

bench: $(STAMP)
	$(PY) -m benchmarks.run --out results

demo: $(STAMP)
	$(PY) -m rise_tf.train.demo

clean:
	rm -rf $(VENV) build *.egg-info
