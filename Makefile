# Every target creates .venv when it is missing, so a fresh clone needs only `make test` or `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras of the training distribution; on a GPU host `make EXTRAS=gpu,test ...` adds TensorFlow's CUDA wheels.
EXTRAS ?= test
STAMP := $(VENV)/.installed

.PHONY: venv test test-slow bench bench-gpu bench-distributed demo clean node-client web-client browser outside-envs

venv: $(STAMP)

# Both distributions in one command: the runtime (./serving) and training, which depends on it.
$(STAMP): setup.py serving/setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./serving -e ".[$(EXTRAS)]"
	$(PY) -m pip check
	touch $(STAMP)

test: $(STAMP) node-client web-client browser
	$(PY) -m pytest -q -m "not slow" --durations=15 tests

# The JavaScript client's packages, when node is present (its test is skipped otherwise).
# --ignore-scripts: onnxruntime-node's install script fetches a CUDA provider the client does not use.
node-client:
	@if command -v node >/dev/null 2>&1 && [ ! -d clients/node/node_modules/onnxruntime-node ]; then \
		cd clients/node && npm ci --ignore-scripts --no-audit --no-fund; fi

# The browser client's packages (onnxruntime-web; playwright-core drives the browser in its tests).
web-client:
	@if command -v node >/dev/null 2>&1 && [ ! -d clients/web/node_modules/onnxruntime-web ]; then \
		cd clients/web && npm ci --ignore-scripts --no-audit --no-fund; fi

# Debian's Chromium for the browser client's tests (playwright-core never downloads a browser). Installed
# when missing and apt-get can (root); otherwise those tests are skipped and say why.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null || \
		echo "[make] could not install chromium: the browser tests will be skipped"; fi

test-slow: $(STAMP) web-client browser
	$(PY) -m pytest -q -s -m slow tests

bench: $(STAMP)
	$(PY) -m benchmarks.run --out results

# btr and rise-btr at BTR's scale (64 envs, batch 256), for users with a GPU; QUICK=1 for a CPU-sized check.
bench-gpu: $(STAMP)
	$(PY) -m benchmarks.gpu_scale --out results $(if $(QUICK),--quick)

# Reverb replay and the distributed engine (issue 11) vs the in-process path; QUICK=1 for a smaller check.
bench-distributed: $(STAMP)
	$(PY) -m benchmarks.distributed --out results $(if $(QUICK),--quick)

# Outside memory benchmarks (issue 21): Memory Gym and ViZDoom, without their dependencies (their pins of
# gymnasium 0.29 and pygame 2.4 / pygame-ce clash with tf-agents' pygame 2.1.3; both run on ours) and
# outside the venv, so `pip check` keeps checking the project's own set. Use: PYTHONPATH=$(OUTSIDE_ENVS).
OUTSIDE_ENVS := .outside-envs
OUTSIDE_ENV_PACKAGES := memory-gym==1.0.2 vizdoom==1.3.2
outside-envs: $(OUTSIDE_ENVS)/.installed

$(OUTSIDE_ENVS)/.installed: $(STAMP)
	$(PY) -m pip install --quiet --no-deps --target $(OUTSIDE_ENVS) $(OUTSIDE_ENV_PACKAGES)
	PYTHONPATH=$(OUTSIDE_ENVS) SDL_AUDIODRIVER=dummy $(PY) -m rise_tf.envs.outside --check
	touch $@

demo: $(STAMP)
	$(PY) -m rise_tf.demo

clean:
	rm -rf $(VENV) $(OUTSIDE_ENVS) build *.egg-info
