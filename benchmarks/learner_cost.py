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


def _prepared(game, updates_per_round, batch_size, overrides, models, warmup_updates):
    """{model name: (agent, batches)}; updates_per_round: {model name: count}. Batches come from each
    model's own learner (rise_tf/parts/learner.py: single steps or segment records)."""
    env = None
    prepared = {}
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
        batches = [(sampled.batch, sampled.weights)
                   for sampled in (learner.sample() for _ in range(updates_per_round[name]))]
        for batch, weights in batches[:warmup_updates]:  # compile and warm up
            agent.train(batch, weights)
        prepared[name] = (agent, batches)
    env.close()
    return prepared


def _interleaved(timers, rounds):
    """{name: [seconds per update, one per round]}, the timers taking turns (A B C A B C ...)."""
    times = {name: [] for name in timers}
    for _ in range(rounds):
        for name, seconds in timers.items():
            times[name].append(seconds())
    return times


def _timed_updates(game, rounds, updates_per_round, batch_size, overrides, models, warmup_updates):
    """{model name: [seconds per update, one entry per round]}; updates_per_round: {model name: count}."""
    prepared = _prepared(game, updates_per_round, batch_size, overrides, models, warmup_updates)
    return _interleaved({name: (lambda agent=agent, batches=batches: seconds_per_update(agent, batches))
                         for name, (agent, batches) in prepared.items()}, rounds)


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


def _peer_timer(game: str, targets: int, updates: int, warmup_updates: int = 1):
    """TF-Agents' recurrent DQN (the peer, rise_tf/peers) on sequences of k+1 steps of random data, with
    B sequences so that B x k transitions = `targets`: (seconds-per-update callable, sequence length, B)."""
    from tf_agents.replay_buffers import tf_uniform_replay_buffer
    from tf_agents.trajectories import trajectory as trajectories
    from tf_agents.utils import common

    from rise_tf.peers.tf_agents_rnn_dqn import make_peer_agent

    config = make_config("dqn", game)
    sequence_length = config.network.window_length + 1  # the peer's default
    batch_size = max(1, targets // (sequence_length - 1))
    env = builder.make_env(config, num_envs=1)
    from tf_agents.environments import tf_py_environment
    tf_env = tf_py_environment.TFPyEnvironment(env)
    agent = make_peer_agent(config, tf_env.time_step_spec(), tf_env.action_spec(), 0.1)
    num_actions = int(tf_env.action_spec().maximum - tf_env.action_spec().minimum + 1)
    env.close()
    lanes, rng = 4, np.random.default_rng(0)
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(agent.collect_data_spec, batch_size=lanes, max_length=600)
    size = config.env.frame_size
    for row in range(600):
        first = row % 500 == 0
        step = trajectories.Trajectory(
            step_type=tf.fill([lanes], 0 if first else 1), observation=tf.constant(
                rng.integers(0, 256, (lanes, size, size), dtype=np.uint8)),
            action=tf.constant(rng.integers(0, num_actions, lanes), agent.collect_data_spec.action.dtype),
            policy_info=(), next_step_type=tf.fill([lanes], 1), reward=tf.constant(rng.standard_normal(lanes), tf.float32),
            discount=tf.ones([lanes]))
        buffer.add_batch(step)
    dataset = iter(buffer.as_dataset(sample_batch_size=batch_size, num_steps=sequence_length, num_parallel_calls=1))
    batches = [next(dataset)[0] for _ in range(updates)]
    train = common.function(agent.train)
    for experience in batches[:warmup_updates]:
        train(experience)

    def seconds():
        start = time.perf_counter()
        for experience in batches:
            loss = train(experience).loss
        float(loss)
        return (time.perf_counter() - start) / len(batches)
    return seconds, sequence_length, batch_size


def measure_segments(game: str = "Pong", rounds: int = 4, updates_per_round: int = 4, targets: int = 128,
                     btr_targets: int = 32, lengths=(1, 8, 16)) -> dict:
    """Learner cost per update and per TD target with segments (issue 20), side by side in one run:
    rise-dqn with batch_size x segment_length = `targets` positions per update for each segment length
    m, rise-btr likewise at `btr_targets` (its Impala x2 body is ~10x dearer), the full-recurrent model's
    single steps and TF-Agents' recurrent DQN (the peer: B sequences of k+1 steps, B x k transitions)
    at `targets`; random data, interleaved rounds."""
    models = [(f"rise_m{m}", "rise-dqn", {"agent": {"segment_length": m, "batch_size": targets // m}}) for m in lengths]
    # φ on one frame, as the peer's CNN reads: ψ's window carries the history a stack would.
    models.append((f"rise_m{lengths[-1]}_stack1", "rise-dqn",
                   {"agent": {"segment_length": lengths[-1], "batch_size": targets // lengths[-1]},
                    "network": {"frame_stack": 1}}))
    models.append(("full_recurrent_m1", "r2d2-lite", {"agent": {"batch_size": targets}}))
    models += [(f"rise_btr_m{m}", "rise-btr", {"agent": {"segment_length": m, "batch_size": btr_targets // m}})
               for m in lengths if btr_targets % m == 0]
    counts = {name: updates_per_round for name, *_ in models}
    prepared = _prepared(game, counts, targets, None, models, warmup_updates=1)
    timers = {name: (lambda agent=agent, batches=batches: seconds_per_update(agent, batches))
              for name, (agent, batches) in prepared.items()}
    peer, sequence_length, peer_batch = _peer_timer(game, targets, updates_per_round)
    timers["tfa_rnn_dqn"] = peer
    times = _interleaved(timers, rounds)
    model_targets = {name: (btr_targets if name.startswith("rise_btr") else targets) for name in timers}
    model_targets["tfa_rnn_dqn"] = peer_batch * (sequence_length - 1)
    result = {"targets_per_update": targets, "btr_targets_per_update": btr_targets, "rounds": rounds,
              "updates_per_round": updates_per_round, "peer_sequence_length": sequence_length,
              "peer_batch_size": peer_batch, "models": {}}
    for name in timers:
        update_ms = 1000 * float(np.median(times[name]))
        result["models"][name] = {"update_ms": update_ms, "targets": model_targets[name],
                                  "target_ms": update_ms / model_targets[name]}
    for name, row in result["models"].items():
        base = result["models"]["rise_btr_m1" if name.startswith("rise_btr") else "rise_m1"]["target_ms"]
        row["over_rise_m1"] = row["target_ms"] / base
        row["over_peer"] = row["target_ms"] / result["models"]["tfa_rnn_dqn"]["target_ms"]
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
