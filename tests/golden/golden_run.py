"""The golden run: a fixed-seed serial run whose records pin the training loop's behaviour.

Refactors of the loop must keep it (issue 19): the same counters in every metrics.jsonl record, the
same losses and Q means to 1e-6, the same evaluation returns, and the final checkpoint's Q on fixed
frames to 1e-6. It goes through `rise-train` (the public entry point), so it does not depend on how
the loop is built inside.

    .venv/bin/python -m tests.golden.golden_run --write    # re-pin (only for an intended change)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_FILE = os.path.join(HERE, "memory_corridor_rise_dqn.json")
ARGS = ["--algo", "rise-dqn", "--game", "MemoryCorridor", "--engine", "serial", "--deterministic-ops",
        "--seed", "7", "--frames", "2400", "--warmup-frames", "400", "--num-envs", "4", "--batch-size", "16",
        "--capacity", "4000", "--embedding-size", "16", "--core-units", "16", "--window-length", "6",
        "--log-every-frames", "400", "--eval-every-frames", "1200", "--eval-episodes", "8",
        "--checkpoint-every-frames", "1200", "--no-progress"]
KEPT = ("kind", "frames", "updates", "episodes", "return", "loss", "q_mean", "epsilon", "returns", "success_rate")
NUM_PROBE_FRAMES = 6


def probe_q(run_dir: str):
    """Q of the final checkpoint's online network on fixed seeded inputs."""
    import numpy as np

    from rise_tf.export import step_model

    network = step_model.load_policy(run_dir).network
    rng = np.random.default_rng(0)
    inputs = {name: rng.integers(0, 256, size=(NUM_PROBE_FRAMES, *spec.shape)).astype(spec.dtype.as_numpy_dtype)
              if spec.dtype.is_integer else rng.standard_normal((NUM_PROBE_FRAMES, *spec.shape)).astype(
                  spec.dtype.as_numpy_dtype)
              for name, spec in network.input_tensor_spec.items()}
    q_values, _ = network(inputs, training=False)
    return q_values.numpy().tolist()


def _train(args) -> None:
    from rise_tf.train.cli import main as train_main

    code = train_main(args)
    if code != 0:
        raise RuntimeError(f"the golden run exited with {code}")


def _counters(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    return {key: summary[key] for key in ("frames", "updates", "episodes")}


def concurrent_counters(run_dir: str) -> dict:
    """The same run on the concurrent engine: its counters are exact too (the rate limiter)."""
    args = [arg for arg in ARGS if arg != "--deterministic-ops"]
    args[args.index("serial")] = "concurrent"
    _train(args + ["--run-dir", run_dir])
    return _counters(run_dir)


def golden_run(run_dir: str) -> dict:
    _train(ARGS + ["--run-dir", run_dir])
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [{key: record[key] for key in KEPT if key in record} for record in map(json.loads, f)]
    return {"args": ARGS, "records": records, "summary": _counters(run_dir), "q": probe_q(run_dir)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {GOLDEN_FILE}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as run_dir:
        result = golden_run(os.path.join(run_dir, "golden"))
        result["concurrent_summary"] = concurrent_counters(os.path.join(run_dir, "concurrent"))
    text = json.dumps(result, indent=1)
    if args.write:
        with open(GOLDEN_FILE, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
