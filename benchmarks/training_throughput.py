"""End-to-end training throughput: emulator frames/s of the whole loop (collect with the driver, store
in replay, learn at the default replay ratio) for the base and RISE-DQN at the default Atari config,
with the serial engine and the concurrent one, side by side in one run.

Each run first passes its warm-up (replay filled, train step traced); the timed segment continues
the same Trainer, so the figure is the steady state a long run sees. Engine efficiency (issue 10):
concurrent frames/s / min(collection alone, learner alone). Collection alone is a run with replay
ratio 0 (acting and replay writes, no learner). Learner alone is 1 / (serial update time), in frames
at the replay ratio: action_repeat / replay_ratio frames per update.
"""
from __future__ import annotations

import tempfile

from rise_tf.envs.choices import lane_mode
from rise_tf.config import make_config
from rise_tf.train.trainer import Trainer


def _frames_per_s(algo: str, game: str, warmup_frames: int, timed_frames: int, engine: str,
                  replay_ratio=None) -> dict:
    train = {"frames": warmup_frames + 2_000, "warmup_frames": warmup_frames, "eval_every_frames": 0,
             "checkpoint_every_frames": 10**9, "log_every_frames": 10**9, "engine": engine}
    if replay_ratio is not None:
        train["replay_ratio"] = replay_ratio
    config = make_config(algo, game, train=train, replay={"capacity": 100_000})
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
            "batch_size": config.agent.batch_size, "action_repeat": config.env.action_repeat,
            "lanes": lane_mode(config.env.parallel, atari=True)}


def measure(game: str = "Pong", warmup_frames: int = 4_000, timed_frames: int = 16_000) -> dict:
    result = {"game": game, "timed_frames": timed_frames}
    for name, algo in (("base", "dqn"), ("rise", "rise-dqn")):
        serial = _frames_per_s(algo, game, warmup_frames, timed_frames, "serial")
        concurrent = _frames_per_s(algo, game, warmup_frames, timed_frames, "concurrent")
        collection = _frames_per_s(algo, game, warmup_frames, timed_frames, "serial", replay_ratio=0.0)
        learner = 1000 / serial["update_ms"] * serial["action_repeat"] / serial["replay_ratio"]
        bound = min(collection["frames_per_s"], learner)
        result[name] = dict(serial, concurrent_frames_per_s=concurrent["frames_per_s"],
                            concurrent_update_ms=concurrent["update_ms"],
                            collection_only_frames_per_s=collection["frames_per_s"],
                            learner_only_frames_per_s=learner,
                            concurrent_over_serial=concurrent["frames_per_s"] / serial["frames_per_s"],
                            efficiency=concurrent["frames_per_s"] / bound,
                            serial_efficiency=serial["frames_per_s"] / bound)
    result["rise_over_base_time"] = result["base"]["frames_per_s"] / result["rise"]["frames_per_s"]
    return result
