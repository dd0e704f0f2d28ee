"""Collection throughput: emulator frames per second with acting (RISE ε-greedy policy, PyDriver,
replay observer) for N parallel Atari games, for each way of stepping the lanes, and the same lanes
stepped raw (random actions, no policy, no replay), so acting's share of collection shows."""
from __future__ import annotations

import time

import numpy as np

from tf_agents.drivers import py_driver
from tf_agents.policies import py_tf_eager_policy

from rise_tf import builder
from rise_tf.config import make_config


def measure(game: str = "Pong", num_envs: int = 8, steps: int = 150,
            modes=("serial", "threads", "processes", "vector")) -> dict:
    result = {"game": game, "num_envs": num_envs, "modes": list(modes)}
    for mode in modes:
        config = make_config("rise-dqn", game, env={"num_envs": num_envs, "parallel": mode},
                             replay={"capacity": 50_000})
        env = builder.make_env(config)
        agent = builder.make_agent(config, env.time_step_spec(), env.action_spec())
        replay = builder.make_replay(config)

        def observe(trajectory):
            replay.add_batch(trajectory.step_type, trajectory.observation, trajectory.policy_info["embedding"],
                             trajectory.action, trajectory.reward, trajectory.discount)

        policy = py_tf_eager_policy.PyTFEagerPolicy(agent.collect_policy, use_tf_function=True,
                                                    batch_time_steps=False)
        counted = {"steps": 0}

        def count(trajectory):
            counted["steps"] += int((~trajectory.is_boundary()).sum())

        driver = py_driver.PyDriver(env, policy, [observe, count], max_steps=num_envs)
        time_step, state = env.reset(), policy.get_initial_state(num_envs)
        for _ in range(10):  # trace the policy, fill the pipes
            time_step, state = driver.run(time_step, state)
        counted["steps"] = 0
        start = time.perf_counter()
        for _ in range(steps):
            time_step, state = driver.run(time_step, state)
        elapsed = time.perf_counter() - start
        result[f"{mode}_frames_per_s"] = counted["steps"] * config.frames_per_agent_step / elapsed
        result[f"{mode}_raw_frames_per_s"] = _raw_frames_per_s(env, steps) * config.frames_per_agent_step
        env.close()
    result["best_mode"] = max(modes, key=lambda m: result[f"{m}_frames_per_s"])
    return result


def _raw_frames_per_s(env, steps: int) -> float:
    """Agent steps per second of the lanes alone: random actions, no policy, no replay."""
    rng = np.random.default_rng(0)
    spec = env.action_spec()
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(0, spec.maximum + 1, env.batch_size).astype(np.int32))
    return steps * env.batch_size / (time.perf_counter() - start)
