"""What the figures ran on (CPU model, cores, memory, GPU, library versions), and writing them out."""
from __future__ import annotations

import json
import os
import platform
from importlib import metadata


def describe() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = None
    try:
        with open("/proc/meminfo") as f:
            memory_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    versions = {}
    for package in ("tensorflow", "tf-agents", "numpy", "ale-py", "gymnasium", "onnxruntime", "tf2onnx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib, "gpus": gpus,
            "python": platform.python_version(), "versions": versions}


def write_results(out: str, stem: str, result: dict, markdown: str) -> None:
    """<out>/<stem>.json (every number) and <stem>.md (the tables), and the tables on stdout."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{stem}.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write(markdown)
    print(markdown)
