"""Frames and wall-clock to solve the memory task: RISE on the BTR base next to RISE-DQN.

Each model trains on MemoryCorridor with its own memory-task preset for a fixed budget, evaluated
greedily every 2,000 frames (32 episodes); "solved" is the first evaluation with >= 95 % success,
and its frames and wall-clock (from the run's start, evaluations included) are the figures.
"""
from __future__ import annotations

import json
import os
import tempfile

from rise_runtime.envs.memory_task import SOLVED_SUCCESS
from rise_tf.run_dir import METRICS_FILE
from rise_tf.config import make_config
from rise_tf.train.trainer import Trainer

MODELS = (("rise_dqn", "rise-dqn"), ("rise_btr", "rise-btr"))


def _solve(algo: str, budget_frames: int, seed: int) -> dict:
    config = make_config(algo, "MemoryCorridor", train={
        "frames": budget_frames, "eval_every_frames": 2_000, "eval_episodes": 32, "seed": seed,
        "checkpoint_every_frames": 10**9})
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, run_dir, progress=False)
        try:
            summary = trainer.run()
        finally:
            trainer.close()
        with open(os.path.join(run_dir, METRICS_FILE)) as f:
            evals = [r for r in map(json.loads, f) if r["kind"] == "eval"]
    solved = next((r for r in evals if r["success_rate"] >= SOLVED_SUCCESS), None)
    return {"algo": algo, "budget_frames": budget_frames, "seed": seed,
            "frames_to_solve": solved["frames"] if solved else None,
            "seconds_to_solve": solved["wall_seconds"] if solved else None,
            "final_success_rate": evals[-1]["success_rate"] if evals else None,
            "run_seconds": summary["wall_seconds"], "update_ms": summary["update_ms"],
            "batch_size": config.agent.batch_size, "learnable_encoder": config.network.learnable_encoder,
            "head": config.network.head}


def measure(budget_frames: int = 20_000, seed: int = 0) -> dict:
    return {name: _solve(algo, budget_frames, seed) for name, algo in MODELS}
