"""`make bench-distributed`: Reverb replay and the distributed engine (issue 11), side by side with the
in-process path in one run. Writes results/bench_distributed.json and bench_distributed.md.

1. Replay throughput for RISE windows (the default Atari layout: 84x84 frames, 64 float16 embeddings,
   k = 16, 4-frame stack, n = 3, batch 32): steps written per second and batches sampled per second,
   Reverb (an embedded server, the learner's tf.data pipeline) against the in-process replay, on the
   same stream of steps.
2. End to end (Pong, rise-dqn, default config, `rise-train --distributed --actors N`): steady-state
   frames/s of the learner's count after the warm-up, for N = 1, 2, 4, against the in-process trainer
   (serial engine) on the same config; efficiency = distributed / in-process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

from benchmarks import machine
from rise_tf.run_dir import METRICS_FILE

ACTOR_COUNTS = (1, 2, 4)
QUICK = dict(steps=300, batches=20, frames=6_000, warmup=2_000, actors=(1, 2))
FULL = dict(steps=2_000, batches=200, frames=24_000, warmup=4_000, actors=ACTOR_COUNTS)


def _layout():
    from rise_tf.config import make_config, replay_layout

    config = make_config("rise-dqn", "Pong", replay={"capacity": 100_000})
    return config, replay_layout(config)


def _stream(layout, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lanes = layout.num_lanes
    frames = rng.integers(0, 256, (64, lanes, layout.frame_size, layout.frame_size), dtype=np.uint8)
    embeddings = rng.normal(size=(64, lanes, layout.embedding_size)).astype(np.float16)
    for i in range(steps):
        step_type = np.where(np.full(lanes, i % 200 == 0), 0, np.where(np.full(lanes, i % 200 == 199), 2, 1))
        yield dict(step_type=step_type.astype(np.uint8), frame=frames[i % 64], embedding=embeddings[i % 64],
                   action=rng.integers(0, 6, lanes), reward=rng.normal(size=lanes).astype(np.float32),
                   discount=np.ones(lanes, np.float32))


def replay_throughput(steps: int, batches: int) -> Dict[str, Dict[str, float]]:
    import tensorflow as tf

    from rise_tf.replay.embedding_replay import EmbeddingReplay
    from rise_tf.replay.reverb_store import ReverbReplay
    from rise_tf import builder

    config, layout = _layout()
    inputs = list(builder.network_spec(config))
    result = {}
    for name in ("in_process", "reverb"):
        store = (EmbeddingReplay(layout, inputs, seed=0) if name == "in_process"
                 else ReverbReplay(layout, inputs, batch_size=config.agent.batch_size))
        try:
            stream = list(_stream(layout, steps))
            started = time.perf_counter()
            for step in stream:
                store.add_batch(**step)
            if name == "reverb":
                store.writers.flush()
            write_s = time.perf_counter() - started
            batch = store.sample(config.agent.batch_size, 0.4)  # the pipeline's first batch (tracing) untimed
            started = time.perf_counter()
            for _ in range(batches):
                batch, _, _ = store.sample(config.agent.batch_size, 0.4)
                tf.nest.map_structure(tf.convert_to_tensor, batch)  # what the trainer does with it
            sample_s = time.perf_counter() - started
        finally:
            store.close()
        result[name] = {"steps_per_s": steps * layout.num_lanes / write_s, "batches_per_s": batches / sample_s,
                        "samples_per_s": batches * config.agent.batch_size / sample_s}
    return result


def _steady_fps(run_dir: str, warmup: int) -> float:
    """Frames/s between the first log record after the warm-up and the last one."""
    with open(os.path.join(run_dir, METRICS_FILE)) as f:
        records = [json.loads(line) for line in f if '"kind": "train"' in line]
    after = [r for r in records if r["frames"] > warmup]
    if len(after) < 2:
        raise RuntimeError(f"{run_dir}: too few log records after the warm-up to time a steady state")
    first, last = after[0], after[-1]
    return (last["frames"] - first["frames"]) / (last["wall_seconds"] - first["wall_seconds"])


def end_to_end(frames: int, warmup: int, actor_counts: List[int]) -> Dict[str, float]:
    common = ["--game", "Pong", "--algo", "rise-dqn", "--frames", str(frames), "--warmup-frames", str(warmup),
              "--eval-every-frames", "0", "--log-every-frames", "2000", "--checkpoint-every-frames", str(10 * frames),
              "--engine", "serial", "--no-progress"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = {}
    with tempfile.TemporaryDirectory() as scratch:
        runs = [("in_process", [])] + [(f"actors_{n}", ["--distributed", "--actors", str(n)]) for n in actor_counts]
        for name, extra in runs:
            run_dir = os.path.join(scratch, name)
            done = subprocess.run([sys.executable, "-m", "rise_tf.train.cli", *common, *extra, "--run-dir", run_dir],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed: {done.stderr[-2000:]}")
            result[name] = _steady_fps(run_dir, warmup)
            print(f"[bench-distributed] {name}: {result[name]:.0f} frames/s", flush=True)
    return result


def measure(quick: bool) -> dict:
    size = QUICK if quick else FULL
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine.describe(),
              "size": "quick" if quick else "full", "replay": replay_throughput(size["steps"], size["batches"])}
    result["end_to_end"] = end_to_end(size["frames"], size["warmup"], list(size["actors"]))
    result["end_to_end_frames"] = size["frames"]
    return result


def markdown(result: dict) -> str:
    m = result["machine"]
    replay, e2e = result["replay"], result["end_to_end"]
    lines = [f"# rise-tf distributed benchmark ({result['size']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, GPU: {', '.join(m['gpus']) or 'none'}; "
             f"measured {result['date']}.", "",
             "## Replay throughput for RISE windows (Pong layout: 84x84 frames, 64 float16 embeddings, k 16, stack 4, "
             "n 3, batch 32)", "",
             "| replay | steps written/s | batches/s | samples/s |", "|---|---:|---:|---:|"]
    for name, label in (("in_process", "in-process (numpy)"), ("reverb", "Reverb, embedded server, tf.data")):
        r = replay[name]
        lines.append(f"| {label} | {r['steps_per_s']:,.0f} | {r['batches_per_s']:,.1f} | {r['samples_per_s']:,.0f} |")
    base = e2e["in_process"]
    lines += ["", f"## End to end (Pong, rise-dqn, default config, {result['end_to_end_frames']:,} frames; steady "
                  f"state after the warm-up)", "", "| engine | frames/s | efficiency vs in-process |", "|---|---:|---:|",
              f"| in-process trainer (serial) | {base:,.0f} | 1.00 |"]
    for name, fps in e2e.items():
        if name.startswith("actors_"):
            lines.append(f"| distributed, {name.split('_')[1]} actor process(es) + learner + server | {fps:,.0f} | "
                         f"{fps / base:.2f} |")
    lines += ["", "All processes share this machine's cores: with 2 cores, more actors compete with the learner "
                  "rather than add throughput; the figures show the overhead of the distributed path, not its "
                  "scaling on a bigger host."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Reverb replay and the distributed engine vs the in-process path")
    parser.add_argument("--out", default="results", help="directory for bench_distributed.json and .md")
    parser.add_argument("--quick", action="store_true", help="a smaller, noisier check")
    args = parser.parse_args()
    from rise_tf.startup import quiet_third_party_startup

    quiet_third_party_startup()
    result = measure(args.quick)
    machine.write_results(args.out, "bench_distributed", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
