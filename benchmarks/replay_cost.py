"""Replay memory per stored step and the time to sample (and assemble) a batch of windows."""
from __future__ import annotations

import time

import numpy as np

from benchmarks.learner_cost import _filled_replay
from rise_tf.config import make_config


def measure(batch_size: int = 32, repeats: int = 200) -> dict:
    result = {}
    for name, algo in (("rise", "rise-dqn"), ("base", "dqn"), ("full_recurrent", "r2d2-lite")):
        config = make_config(algo, "Pong", replay={"capacity": 100_000}, env={"num_envs": 8})
        replay = _filled_replay(config, steps_per_lane=config.replay.capacity // 8, num_actions=6)  # Pong's 6 actions
        replay.sample(batch_size, config.replay.importance_beta_start)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            replay.sample(batch_size, config.replay.importance_beta_start)
            times.append(time.perf_counter() - start)
        result[name] = {"bytes_per_step": replay.bytes_per_step(),
                        "sample_ms_p50": 1000 * float(np.median(times)),
                        "sample_ms_p99": 1000 * float(np.percentile(times, 99)),
                        "embedding_size": replay.layout.embedding_size,
                        "embedding_dtype": replay.layout.embedding_dtype}
    result["batch_size"] = batch_size
    return result
