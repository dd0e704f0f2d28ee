"""End-to-end training throughput: emulator frames/s of the whole loop (collect with the driver, store
in replay, learn at the default replay ratio) for the base and RISE-DQN at the default Atari config.

Each model first runs past its warm-up (replay filled, train step traced), then the timed segment
continues the same Trainer, so the figure is the steady state a long run sees.
"""
from __future__ import annotations

import tempfile

from rise_tf.train.config import make_config
from rise_tf.train.trainer import Trainer


def _frames_per_s(algo: str, game: str, warmup_frames: int, timed_frames: int) -> dict:
    config = make_config(algo, game, train={
        "frames": warmup_frames + 2_000, "warmup_frames": warmup_frames, "eval_every_frames": 0,
        "checkpoint_every_frames": 10**9, "log_every_frames": 10**9}, replay={"capacity": 100_000})
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, run_dir, progress=False)
        try:
            trainer.run()  # warm-up + first updates (tracing) + a checkpoint
            trainer.config = trainer.config.replace(train={"frames": trainer.counters.frames + timed_frames})
            summary = trainer.run()
        finally:
            trainer.close()
    return {"frames_per_s": summary["fps"], "update_ms": summary["update_ms"],
            "replay_ratio": config.train.replay_ratio, "num_envs": config.env.num_envs,
            "batch_size": config.agent.batch_size}


def measure(game: str = "Pong", warmup_frames: int = 4_000, timed_frames: int = 16_000) -> dict:
    result = {"game": game, "timed_frames": timed_frames}
    for name, algo in (("base", "dqn"), ("rise", "rise-dqn")):
        result[name] = _frames_per_s(algo, game, warmup_frames, timed_frames)
    result["rise_over_base_time"] = result["base"]["frames_per_s"] / result["rise"]["frames_per_s"]
    return result
