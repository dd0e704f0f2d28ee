"""Learner update cost of the three models on the same sampled data, interleaved in one run.

All three agents train on batches assembled from one replay filled with the same random frames
and embeddings, so the only difference is the model. Rounds alternate the models (A B C A B C ...)
so machine noise hits all of them alike; the figure is the median time per update.

`measure` compares the DQN-base models; `measure_btr` the BTR-base ones (bench.json `learner_btr`):
there one update of the full-recurrent model takes tens of seconds on a CPU, so it runs fewer
updates per round than the other two.
"""
from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from rise_tf.replay.layout import FIRST, MID
from rise_tf import builder
from rise_tf.config import make_config
from rise_tf.parts.counters import Counters

MODELS = (("base", "dqn"), ("rise", "rise-dqn"), ("full_recurrent", "r2d2-lite"))
BTR_MODELS = (("btr", "btr"), ("rise_btr", "rise-btr"), ("full_recurrent", "r2d2-btr"))


def _filled_replay(config, steps_per_lane: int, num_actions: int, seed: int = 0):
    """A replay of random frames, embeddings and actions (valid for a game with `num_actions`)."""
    replay = builder.make_replay(config)
    lanes = config.env.num_envs
    rng = np.random.default_rng(seed)
    size, embedding = config.env.frame_size, config.network.embedding_size
    for row in range(steps_per_lane):
        step_type = np.full(lanes, FIRST if row % 500 == 0 else MID)
        replay.add_batch(step_type, rng.integers(0, 256, (lanes, size, size), dtype=np.uint8),
                         rng.standard_normal((lanes, embedding)).astype(np.float32),
                         rng.integers(0, num_actions, lanes), rng.standard_normal(lanes), np.ones(lanes))
    return replay


def _timed_updates(game, rounds, updates_per_round, batch_size, overrides, models, warmup_updates):
    """{model name: [seconds per update, one entry per round]}; updates_per_round: {model name: count}.
    Batches come from each model's own learner (rise_tf/parts/learner.py: single steps or segments)."""
    env = None
    agents, batches = {}, {}
    for name, algo, *own in models:  # a model may carry its own overrides: (name, algo, {"train": {...}})
        config = make_config(algo, game, agent={"batch_size": batch_size},
                             replay={"capacity": 20_000}, env={"num_envs": 4}, **(overrides or {}))
        if own:
            config = config.replace(**own[0])
        if env is None:
            env = builder.make_env(config)
        agent = builder.make_agent(config, env.time_step_spec(), env.action_spec())
        num_actions = int(env.action_spec().maximum - env.action_spec().minimum + 1)
        replay = _filled_replay(config, 1_000, num_actions)
        learner = builder.make_learner(lambda config=config: config, agent, replay, Counters(), device="/CPU:0",
                                       strategy=None)
        batches[name] = [(sampled.batch, sampled.weights)
                         for sampled in (learner.sample() for _ in range(updates_per_round[name]))]
        for batch, weights in batches[name][:warmup_updates]:  # compile and warm up
            agent.train(batch, weights)
        agents[name] = agent
    env.close()
    times = {name: [] for name, *_ in models}
    for _ in range(rounds):
        for name, *_ in models:
            times[name].append(seconds_per_update(agents[name], batches[name]))
    return times


def seconds_per_update(agent, batches) -> float:
    """Mean wall-clock of agent.train over `batches`, waiting for the last update to finish."""
    start = time.perf_counter()
    for batch, weights in batches:
        loss = agent.train(batch, weights).loss
    float(loss)
    return (time.perf_counter() - start) / len(batches)


def measure(game: str = "Pong", rounds: int = 5, updates_per_round: int = 10, batch_size: int = 32,
            overrides=None, models=MODELS) -> dict:
    times = _timed_updates(game, rounds, {name: updates_per_round for name, *_ in models}, batch_size, overrides,
                           models, warmup_updates=3)
    result = {f"{name}_update_ms": 1000 * float(np.median(t)) for name, t in times.items()}
    if "base_update_ms" in result and "rise_update_ms" in result:
        result["rise_over_base"] = result["rise_update_ms"] / result["base_update_ms"]
    if "full_recurrent_update_ms" in result and "rise_update_ms" in result:
        result["full_recurrent_over_rise"] = result["full_recurrent_update_ms"] / result["rise_update_ms"]
    result["batch_size"] = batch_size
    result["window_length"] = make_config("rise-dqn", game).network.window_length
    return result


def measure_segments(game: str = "Pong", rounds: int = 4, updates_per_round: int = 4, targets: int = 128,
                     lengths=(1, 8, 16)) -> dict:
    """Learner cost per update and per TD target with segments (issue 20): rise-dqn with batch_size x
    segment_length = `targets` positions per update for each segment length m, and the full-recurrent
    model's single steps at the same number of targets; one replay of random data, interleaved rounds."""
    models = [(f"rise_m{m}", "rise-dqn", {"agent": {"segment_length": m, "batch_size": targets // m}}) for m in lengths]
    models.append(("full_recurrent_m1", "r2d2-lite", {"agent": {"batch_size": targets}}))
    times = _timed_updates(game, rounds, {name: updates_per_round for name, *_ in models}, targets, None, models,
                           warmup_updates=1)
    result = {"targets_per_update": targets, "rounds": rounds, "updates_per_round": updates_per_round, "models": {}}
    for name, *_ in models:
        update_ms = 1000 * float(np.median(times[name]))
        result["models"][name] = {"update_ms": update_ms, "target_ms": update_ms / targets}
    base = result["models"]["rise_m1"]["target_ms"]
    for row in result["models"].values():
        row["over_rise_m1"] = row["target_ms"] / base
    return result


def measure_btr(game: str = "Pong", rounds: int = 4, batch_size: int = 64) -> dict:
    """BTR (Impala x2 + spectral norm, noisy dueling IQN, Munchausen) vs RISE on it vs full recurrence
    on the same body (k = 16 frames through the Impala CNN), same data, interleaved rounds."""
    updates = {"btr": 3, "rise_btr": 3, "full_recurrent": 1}
    times = _timed_updates(game, rounds, updates, batch_size, None, BTR_MODELS, warmup_updates=1)
    result = {f"{name}_update_ms": 1000 * float(np.median(t)) for name, t in times.items()}
    result["rise_btr_over_btr"] = result["rise_btr_update_ms"] / result["btr_update_ms"]
    result["full_over_rise_btr"] = result["full_recurrent_update_ms"] / result["rise_btr_update_ms"]
    # Each round's RISE/BTR ratio, to show the spread that noise gives the median above.
    result["rise_btr_over_btr_per_round"] = [r / b for r, b in zip(times["rise_btr"], times["btr"])]
    result.update(batch_size=batch_size, rounds=rounds, updates_per_round=updates,
                  window_length=make_config("rise-btr", game).network.window_length)
    return result


def measure_compilation(game: str = "Pong", rounds: int = 4, batch_size: int = 32,
                        algos=("dqn", "rise-dqn")) -> dict:
    """The learner update as plain tf.function, with XLA (jit_compile) and with mixed precision
    (float16 compute), for each algo, same data, interleaved rounds. On a CPU host mixed precision
    is expected to lose (no float16 units); the figure is here so nobody has to guess."""
    variants = {"plain": {}, "xla": {"train": {"xla": True}}, "mixed_precision": {"train": {"mixed_precision": True}}}
    models = [(f"{algo}/{variant}", algo, overrides) for algo in algos for variant, overrides in variants.items()]
    times = _timed_updates(game, rounds, {name: 5 for name, *_ in models}, batch_size, None, models,
                           warmup_updates=2)
    result = {"batch_size": batch_size, "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU"}
    for algo in algos:
        plain = float(np.median(times[f"{algo}/plain"]))
        result[algo] = {variant: {"update_ms": 1000 * float(np.median(times[f"{algo}/{variant}"])),
                                  "over_plain": float(np.median(times[f"{algo}/{variant}"])) / plain}
                        for variant in variants}
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
