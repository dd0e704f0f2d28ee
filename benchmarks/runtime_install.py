"""The game developer's install: a fresh venv with only the runtime (./serving), its size, `pip check`,
and a smoke run of an exported model with TensorFlow and OpenCV blocked; then the same with the
`play` and `server` extras. Also the cost of the numpy preprocessing next to OpenCV's, per frame.

Needs the package index (PyPI) for the fresh venv; nothing else downloads.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVING = os.path.join(ROOT, "serving")
# Distributions that every venv has (the installer itself), reported apart from the runtime's.
INSTALLER_DISTRIBUTIONS = ("pip", "setuptools", "pkg_resources", "_distutils_hack")

SMOKE = """
import sys, json
for name in ("tensorflow", "tf_agents", "cv2"):
    sys.modules[name] = None
import numpy as np
from rise_runtime.runner import Policy
policy = Policy.load(sys.argv[1])
rng = np.random.default_rng(0)
for _ in range(5):
    policy.act(rng.integers(0, 256, (210, 160, 3), dtype=np.uint8))
print(json.dumps({"numpy": np.__version__, "q": policy.q_values.tolist()}))
"""


def _size_mb(path: str) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total / 1e6


def _site_packages(venv: str) -> str:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return os.path.join(venv, "lib", version, "site-packages")


def _breakdown(venv: str) -> dict:
    site = _site_packages(venv)
    sizes = {}
    for name in os.listdir(site):
        full = os.path.join(site, name)
        if os.path.isdir(full) and not name.endswith((".dist-info", "__pycache__")):
            sizes[name] = round(_size_mb(full), 1)
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def _pip(venv: str, *args: str) -> None:
    subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "--disable-pip-version-check", "--quiet",
                    *args], check=True, capture_output=True, text=True)


def _preprocessing_cost(repeats: int) -> dict:
    import cv2

    from rise_runtime.preprocessing import preprocess_screens

    rng = np.random.default_rng(0)
    screens = [rng.integers(0, 256, (210, 160, 3), dtype=np.uint8) for _ in range(2)]

    def with_opencv(screen, previous):
        gray = cv2.cvtColor(np.maximum(screen, previous), cv2.COLOR_RGB2GRAY)
        return cv2.resize(gray, (84, 84), interpolation=cv2.INTER_AREA)

    timings = {}
    for name, function in (("numpy", preprocess_screens), ("opencv", with_opencv)):
        function(*screens)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            function(*screens)
            samples.append(time.perf_counter() - start)
        timings[f"{name}_ms"] = 1000 * float(np.median(samples))
    timings["numpy_over_opencv"] = timings["numpy_ms"] / timings["opencv_ms"]
    return timings


def measure(repeats: int = 2000) -> dict:
    from benchmarks.step_latency import export_default_model

    result = {"preprocessing": _preprocessing_cost(repeats)}
    with tempfile.TemporaryDirectory() as directory:
        model_path = export_default_model(directory)[3]
        venv = os.path.join(directory, "rt")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        started = time.time()
        _pip(venv, "install", SERVING)
        result["base_install_seconds"] = time.time() - started
        _pip(venv, "check")
        smoke = subprocess.run([os.path.join(venv, "bin", "python"), "-c", SMOKE, model_path], check=True,
                               capture_output=True, text=True)
        result["base_smoke"] = smoke.stdout.strip().splitlines()[-1]
        breakdown = _breakdown(venv)
        installer = sum(size for name, size in breakdown.items() if name in INSTALLER_DISTRIBUTIONS)
        result["base_venv_mb"] = round(_size_mb(venv), 1)
        result["base_without_installer_mb"] = round(result["base_venv_mb"] - installer, 1)
        result["base_packages_mb"] = {k: v for k, v in breakdown.items() if k not in INSTALLER_DISTRIBUTIONS}
        _pip(venv, "install", f"{SERVING}[play,server]")
        _pip(venv, "check")
        result["with_play_server_venv_mb"] = round(_size_mb(venv), 1)
    return result
