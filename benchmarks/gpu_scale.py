"""`make bench-gpu`: btr and rise-btr at Beyond The Rainbow's scale (64 envs, batch 256, Pong), for
users with a GPU. Writes results/bench_gpu.json and bench_gpu.md.

For each model, one Trainer with the concurrent engine passes its warm-up, then trains for a fixed
wall-clock time; the figures are that segment's end-to-end frames/s and learner updates/s, the GPU's
utilisation sampled every second by nvidia-smi (when there is one), and, measured right after in the
same process, collection alone (replay ratio 0) and the learner alone (updates on sampled batches),
so a user sees which side bounds them. BTR itself reports ~4,600 frames/s on one desktop GPU.

The project's machines have no GPU: this file's GPU figures are not measured by the project. On a
CPU host it runs too (`--quick`: 8 envs, batch 32, seconds instead of minutes), which is how its
logic is tested.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import threading
import time
from typing import List, Optional

from benchmarks import machine

MODELS = ("btr", "rise-btr")
FULL = dict(num_envs=64, batch_size=256, warmup_frames=50_000, seconds=180)  # the paper's scale, 3 minutes each
QUICK = dict(num_envs=8, batch_size=32, warmup_frames=2_000, seconds=20)
CPU = dict(num_envs=64, batch_size=256, warmup_frames=20_000, seconds=90)  # `make bench`: BTR's scale, shorter


class GpuUtilisation:
    """Samples `nvidia-smi` utilisation (%) once a second in a thread; no samples without a GPU tool."""

    def __init__(self, period: float = 1.0):
        self.samples: List[float] = []
        self._stop = threading.Event()
        self._tool = shutil.which("nvidia-smi")
        self._thread = threading.Thread(target=self._sample, args=(period,), daemon=True)

    def __enter__(self):
        if self._tool:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                out = subprocess.run([self._tool, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.split()[0]))  # the first GPU: the learner's
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return

    def mean(self) -> Optional[float]:
        return sum(self.samples) / len(self.samples) if self.samples else None


def _config(algo: str, size: dict, **train):
    from rise_tf.config import make_config

    return make_config(algo, "Pong", env={"num_envs": size["num_envs"]}, agent={"batch_size": size["batch_size"]},
                       replay={"capacity": max(100_000, 2 * size["warmup_frames"])},
                       train=dict(warmup_frames=size["warmup_frames"], eval_every_frames=0, log_every_frames=10**9,
                                  checkpoint_every_frames=10**12, frames=10**12, **train))


def _run_for(trainer, seconds: float) -> dict:
    """Trains for about `seconds` more (whole collection steps) and returns frames/s and updates/s."""
    start_frames, start_updates = trainer.counters.frames, trainer.counters.updates
    counters, train = trainer.counters, trainer.config.train
    fps_guess = max(counters.frames / max(counters.wall_seconds, 1e-9), 1.0)  # the warm-up's pace: collection only
    if counters.timed_updates and train.replay_ratio > 0:  # with learning, the learner may bound it
        seconds_per_update = counters.update_seconds / counters.timed_updates
        fps_guess = min(fps_guess, trainer.config.env.action_repeat / train.replay_ratio / seconds_per_update)
    trainer.config = trainer.config.replace(train={"frames": start_frames + int(fps_guess * seconds) + 1})
    start = time.perf_counter()
    trainer.run()
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "frames_per_s": (trainer.counters.frames - start_frames) / elapsed,
            "updates_per_s": (trainer.counters.updates - start_updates) / elapsed}


def _learner_alone(trainer, updates: int) -> float:
    """Updates/s of the learner on batches its own sampler draws from the trainer's replay (no collection)."""
    from benchmarks.learner_cost import seconds_per_update

    batches = [(sampled.batch, sampled.weights) for sampled in (trainer.learner.sample() for _ in range(updates + 1))]
    seconds_per_update(trainer.agent, batches[:1])  # warm
    return 1.0 / seconds_per_update(trainer.agent, batches[1:])


def measure_model(algo: str, size: dict, mixed_precision: bool) -> dict:
    from rise_tf.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(_config(algo, size, engine="concurrent", mixed_precision=mixed_precision), run_dir,
                          progress=False)
        try:
            # warm-up, then a few collection steps of learning (the update's one trace) before timing
            trainer.config = trainer.config.replace(train={"frames": size["warmup_frames"] + 16 * size["num_envs"] * 4})
            trainer.run()
            with GpuUtilisation() as gpu:
                end_to_end = _run_for(trainer, size["seconds"])
            learner_ups = _learner_alone(trainer, updates=10)
        finally:
            trainer.close()
    config = _config(algo, size)
    frames_per_update = config.env.action_repeat / config.train.replay_ratio
    with tempfile.TemporaryDirectory() as run_dir:  # collection alone: same lanes, replay ratio 0
        trainer = Trainer(_config(algo, size, replay_ratio=0.0), run_dir, progress=False)
        try:
            trainer.config = trainer.config.replace(train={"frames": size["num_envs"] * 40})
            trainer.run()
            collection = _run_for(trainer, size["seconds"] / 3)
        finally:
            trainer.close()
    return {"end_to_end_frames_per_s": end_to_end["frames_per_s"], "learner_updates_per_s": end_to_end["updates_per_s"],
            "timed_seconds": end_to_end["seconds"], "gpu_utilisation_percent": gpu.mean(),
            "learner_alone_updates_per_s": learner_ups,
            "learner_alone_frames_per_s": learner_ups * frames_per_update,
            "collection_alone_frames_per_s": collection["frames_per_s"],
            "replay_ratio": config.train.replay_ratio, "lane_mode": config.env.parallel}


def measure(quick: bool = False, cpu: bool = False) -> dict:
    """quick: the CPU-sized check; cpu: BTR's sizes with a shorter warm-up and timing (make bench)."""
    import tensorflow as tf

    size = QUICK if quick else CPU if cpu else FULL
    gpus = tf.config.list_physical_devices("GPU")
    result = {"size": dict(size), "quick": quick, "device": "GPU" if gpus else "CPU",
              "mixed_precision": bool(gpus), "machine": machine.describe(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for algo in MODELS:
        print(f"[bench-gpu] {algo}: {size['num_envs']} envs, batch {size['batch_size']}, "
              f"{size['seconds']} s timed ...", flush=True)
        result[algo] = measure_model(algo, size, mixed_precision=bool(gpus))
    return result


def table(result: dict) -> List[str]:
    """The figures as markdown table lines (bench_gpu.md, and bench.md's CPU section)."""
    lines = ["| model | end-to-end frames/s (timed s) | learner updates/s | GPU utilisation | learner alone (frames/s) | "
             "collection alone (frames/s) | bound by |", "|---|---:|---:|---:|---:|---:|---|"]
    for algo in MODELS:
        r = result[algo]
        gpu = f"{r['gpu_utilisation_percent']:.0f} %" if r["gpu_utilisation_percent"] is not None else "-"
        bound = "learner" if r["learner_alone_frames_per_s"] < r["collection_alone_frames_per_s"] else "collection"
        lines.append(f"| {algo} | {r['end_to_end_frames_per_s']:.0f} ({r['timed_seconds']:.0f}) | "
                     f"{r['learner_updates_per_s']:.2f} | {gpu} | "
                     f"{r['learner_alone_frames_per_s']:.0f} | {r['collection_alone_frames_per_s']:.0f} | {bound} |")
    return lines


def markdown(result: dict) -> str:
    size, m = result["size"], result["machine"]
    where = f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, GPUs: {', '.join(m['gpus']) or 'none'}"
    lines = [f"# rise-tf at Beyond The Rainbow's scale ({result['device']})", "",
             f"Measured {result['date']} on {where}. {size['num_envs']} Pong envs, batch "
             f"{size['batch_size']}, concurrent engine, about {size['seconds']} s timed (whole collection steps) after a {size['warmup_frames']:,}-frame "
             f"warm-up{'; mixed precision' if result['mixed_precision'] else ''}.", ""]
    if result["device"] == "CPU":
        lines += ["**No GPU here: these are CPU figures** (the project's machines have no GPU; its GPU figures "
                  "are not measured by the project).", ""]
    lines += table(result)
    lines += ["", "BTR reports ~4,600 frames/s (200M frames in ~12 hours) on one desktop GPU."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="btr and rise-btr at BTR's scale: frames/s, learner updates/s, "
                                                 "GPU utilisation (for users with a GPU)")
    parser.add_argument("--out", default="results", help="directory for bench_gpu.json and bench_gpu.md")
    parser.add_argument("--quick", action="store_true", help="8 envs, batch 32, 20 s each: a check that runs on a CPU")
    args = parser.parse_args()
    from rise_tf.startup import quiet_third_party_startup

    quiet_third_party_startup()
    result = measure(args.quick)
    machine.write_results(args.out, "bench_gpu", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
