"""The peer: TF-Agents' own recurrent DQN, set up as a TF-Agents user would today.

    python -m rise_tf.peers.tf_agents_rnn_dqn --game MemoryCorridor --seed 0 --frames 20000 --run-dir runs/peer
    python -m rise_tf.peers.tf_agents_rnn_dqn --env-id MortarMayhem-Grid-v0 --env-module memory_gym --run-dir runs/p
    rise-experiment memory --variants tfa-rnn-dqn,rise-dqn          # side by side with RISE

What it is (DRQN-style, Hausknecht & Stone 2015, with TF-Agents' parts only):
- `QRnnNetwork`: the Nature CNN and a 512-unit layer on each single frame, an LSTM, a linear Q layer;
- `DqnAgent` trained on sequences of `sequence_length` steps sampled from a `TFUniformReplayBuffer`:
  the CNN re-encodes every frame of every sequence at every update, the LSTM starts from a zero
  state at the sequence's start, and the loss covers every step of the sequence (n-step 1);
- a `DynamicStepDriver` collecting from the same batched env lanes rise-train uses.
It runs on every env rise-train runs on (Atari, the memory tasks, --env-id with its module and image
key, --flicker, --scale): the env settings are rise-train's own flags.
Everything else comes from rise-tf's own config for the same game and the `dqn` preset (lanes,
warm-up, replay ratio, ε schedule, γ, learning rate, Adam ε, batch, target period, gradient clip,
evaluation), so the comparison differs in the learner only. Sequence length: rise-tf's window k
plus one (k transitions). Runs write config.json, metrics.jsonl and summary.json in the same
format as rise-train's, so rise-report compares them with everything else.
Deviations from a plain TF-Agents script: none in the learner; episodes are counted and evaluated
by rise-tf's evaluation (greedy, one episode per lane).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import List, Optional

from rise_tf.startup import quiet_third_party_startup

quiet_third_party_startup()

PEER_ALGO = "tfa-rnn-dqn"
DEFAULT_GAME = "MemoryCorridor"


def build_parser() -> argparse.ArgumentParser:
    from rise_tf.config_flags import add_config_flags
    from rise_tf.counts import parse_count, parse_real

    parser = argparse.ArgumentParser(prog="python -m rise_tf.peers.tf_agents_rnn_dqn",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", default=PEER_ALGO, choices=[PEER_ALGO], help="the peer's name (for experiments)")
    parser.add_argument("--seed", type=int, default=0, help="seed for TensorFlow, numpy and the env lanes")
    parser.add_argument("--frames", type=parse_count, default=None, help="budget [default: the game's preset]")
    parser.add_argument("--run-dir", required=True, help="where the run is written")
    parser.add_argument("--sequence-length", type=parse_count, default=None,
                        help="steps per sampled sequence [default: rise-tf's window k + 1]")
    parser.add_argument("--warmup-frames", type=parse_count, default=None,
                        help="frames collected before the first update [default: the preset's]")
    parser.add_argument("--eval-every-frames", type=parse_count, default=None, help="[default: the preset's]")
    parser.add_argument("--eval-episodes", type=parse_count, default=None, help="[default: the preset's]")
    parser.add_argument("--stop-at-success", type=parse_real, default=0.0,
                        help="stop once a greedy evaluation reaches this success rate (0 = never)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(parser, sections=("env",), algo=False)  # --game, --env-id, --env-module, --scale, ...
    return parser


def peer_settings(args) -> dict:
    """The peer's settings: rise-tf's `dqn` preset for this game, plus the peer's own."""
    from rise_tf.config_flags import config_from_settings, given_settings

    train = {key: value for key, value in (("frames", args.frames), ("warmup_frames", args.warmup_frames),
                                           ("eval_every_frames", args.eval_every_frames),
                                           ("eval_episodes", args.eval_episodes)) if value is not None}
    updates = given_settings(args)
    env = updates.setdefault("env", {})
    if not env.get("game") and not env.get("env_id"):
        env["game"] = DEFAULT_GAME
    updates["train"] = dict(train, seed=args.seed, stop_at_success=args.stop_at_success)
    config = config_from_settings("dqn", args.scale, updates)
    sequence_length = args.sequence_length or config.network.window_length + 1
    if sequence_length < 2:
        raise ValueError(f"--sequence-length must be >= 2 (one transition), got {sequence_length}")
    return {"config": config, "sequence_length": sequence_length}


def make_peer_agent(config, time_step_spec, action_spec, epsilon):
    """TF-Agents' DqnAgent on its QRnnNetwork (Nature CNN, 512 fc, LSTM of the run's core units),
    initialised; `epsilon` (a variable or a number) is its collect policy's ε."""
    import tensorflow as tf
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.networks import q_rnn_network
    from tf_agents.utils import common

    to_unit_frames = tf.keras.layers.Lambda(lambda frame: tf.cast(frame, tf.float32)[..., None] / 255.0)
    q_net = q_rnn_network.QRnnNetwork(
        time_step_spec.observation, action_spec, preprocessing_layers=to_unit_frames,
        conv_layer_params=[(32, 8, 4), (64, 4, 2), (64, 3, 1)], input_fc_layer_params=(512,),
        lstm_size=(config.network.core_units,), output_fc_layer_params=None)
    agent_c = config.agent
    agent = dqn_agent.DqnAgent(
        time_step_spec, action_spec, q_network=q_net,
        optimizer=tf.keras.optimizers.Adam(agent_c.learning_rate, epsilon=agent_c.adam_epsilon),
        epsilon_greedy=lambda: epsilon, n_step_update=1, target_update_period=agent_c.target_update_period,
        td_errors_loss_fn=common.element_wise_huber_loss, gamma=agent_c.gamma,
        gradient_clipping=agent_c.gradient_clip_norm or None, train_step_counter=tf.Variable(0, dtype=tf.int64))
    agent.initialize()
    return agent


def run(args) -> dict:
    import tensorflow as tf
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.environments import tf_py_environment
    from tf_agents.metrics import tf_metrics
    from tf_agents.replay_buffers import tf_uniform_replay_buffer
    from tf_agents.utils import common

    from rise_tf.run_dir import CONFIG_FILE, SUMMARY_FILE, append_metrics, write_json_atomic
    from rise_tf import builder
    from rise_tf.parts import updates as update_rule
    from rise_tf.parts.evaluator import (EVAL_SEED_OFFSET, MAX_EVAL_LANES, as_py_policy, evaluate,
                                         final_evaluation_due, success_record)
    from rise_tf.parts.schedules import exploration_epsilon

    settings = peer_settings(args)
    config, sequence_length = settings["config"], settings["sequence_length"]
    env_c, net_c, agent_c, train_c = config.env, config.network, config.agent, config.train
    if os.path.exists(args.run_dir):
        shutil.rmtree(args.run_dir)  # peer runs are short: an unfinished one starts over
    os.makedirs(args.run_dir)
    record = {"algo": PEER_ALGO, "scale": config.scale,
              "env": {"game": config.env_name, "env_kind": env_c.env_kind, "env_id": env_c.env_id,
                      "env_module": env_c.env_module, "image_key": env_c.image_key,
                      "reset_options": env_c.reset_options, "flicker": env_c.flicker,
                      "action_repeat": config.frames_per_agent_step, "num_envs": env_c.num_envs},
              "network": {"kind": "tf_agents.networks.QRnnNetwork", "conv": "nature", "input_fc": 512,
                          "lstm_size": net_c.core_units},
              "agent": {"kind": "tf_agents.agents.DqnAgent", "sequence_length": sequence_length, "n_step": 1,
                        "gamma": agent_c.gamma, "learning_rate": agent_c.learning_rate,
                        "batch_size": agent_c.batch_size, "target_update_period": agent_c.target_update_period,
                        "gradient_clip_norm": agent_c.gradient_clip_norm},
              "replay": {"kind": "tf_agents.replay_buffers.TFUniformReplayBuffer", "capacity": config.replay.capacity},
              "train": {"seed": args.seed, "frames": train_c.frames, "warmup_frames": train_c.warmup_frames,
                        "replay_ratio": train_c.replay_ratio}}
    write_json_atomic(os.path.join(args.run_dir, CONFIG_FILE), record)

    tf.keras.utils.set_random_seed(args.seed)
    py_env = builder.make_env(config, training=True)
    env = tf_py_environment.TFPyEnvironment(py_env)
    eval_env = builder.make_env(config, num_envs=min(train_c.eval_episodes, MAX_EVAL_LANES),
                                seed_offset=EVAL_SEED_OFFSET, training=False, parallel="serial")
    frames_per_step = config.frames_per_agent_step
    epsilon = tf.Variable(train_c.epsilon_start, dtype=tf.float32, trainable=False)
    agent = make_peer_agent(config, env.time_step_spec(), env.action_spec(), epsilon)
    replay = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        agent.collect_data_spec, batch_size=env.batch_size, max_length=config.replay.capacity // env.batch_size)
    env_steps = tf_metrics.EnvironmentSteps()  # non-boundary steps over all lanes, as the driver counts
    driver = dynamic_step_driver.DynamicStepDriver(env, agent.collect_policy, observers=[replay.add_batch, env_steps],
                                                   num_steps=env.batch_size)
    driver.run = common.function(driver.run)
    agent.train = common.function(agent.train)
    dataset = replay.as_dataset(sample_batch_size=agent_c.batch_size, num_steps=sequence_length,
                                num_parallel_calls=2).prefetch(2)
    batches = iter(dataset)
    targets_per_update = agent_c.batch_size * (sequence_length - 1)  # a sequence of T steps: T - 1 transitions

    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=train_c.frames, unit="frame", unit_scale=True, desc=f"{PEER_ALGO} {config.env_name}",
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
    frames, updates, earning_steps, update_seconds, timed = 0, 0, 0, 0.0, 0
    next_eval = train_c.eval_every_frames or float("inf")
    started = time.time()
    time_step, policy_state = None, agent.collect_policy.get_initial_state(env.batch_size)
    last_eval, last_eval_frames, solved_at = None, None, -1

    eval_policy = as_py_policy(agent.policy)  # wrapped once: traced at the first evaluation only

    def evaluate_and_log():
        result = evaluate(eval_policy, eval_env, train_c.eval_episodes, config.env_name)
        line = {"kind": "eval", "frames": frames, "return": result.mean_return, "returns": result.returns,
                **success_record(config, result), "wall_seconds": time.time() - started,
                "updates": updates, "td_targets": updates * targets_per_update}
        append_metrics(args.run_dir, line)
        return result

    while frames < train_c.frames and solved_at < 0:
        epsilon.assign(exploration_epsilon(train_c, frames))
        before = int(env_steps.result())
        time_step, policy_state = driver.run(time_step, policy_state)
        new_steps = int(env_steps.result()) - before
        frames += new_steps * frames_per_step
        # Warm once replay holds the warm-up and one whole sequence; then the run's replay ratio.
        if update_rule.is_warm(int(replay.num_frames().numpy()), max(train_c.warmup_frames, sequence_length),
                               frames_per_step):
            earning_steps += new_steps
            for _ in range(update_rule.updates_owed(train_c.replay_ratio, earning_steps, updates)):
                experience, _ = next(batches)
                began = time.perf_counter()
                agent.train(experience).loss.numpy()
                if updates > 0:  # the first update traces the function
                    update_seconds += time.perf_counter() - began
                    timed += 1
                updates += 1
        if bar is not None:
            bar.update(frames - bar.n)
        if frames >= next_eval:
            last_eval, last_eval_frames = evaluate_and_log(), frames
            next_eval = (frames // train_c.eval_every_frames + 1) * train_c.eval_every_frames
            if train_c.stop_at_success and last_eval.success_rate >= train_c.stop_at_success:
                solved_at = frames
    if bar is not None:
        bar.close()
    if final_evaluation_due(train_c.eval_every_frames, last_eval_frames, frames):
        last_eval = evaluate_and_log()
    summary = {"algo": PEER_ALGO, "game": config.env_name, "seed": args.seed, "frames": frames,
               "budget_frames": train_c.frames, "completed": True, "stopped_solved": solved_at >= 0,
               "updates": updates, "wall_seconds": time.time() - started,
               "update_ms": 1000 * update_seconds / max(timed, 1), "sample_ms": 0.0,
               "fps": frames / max(time.time() - started, 1e-9)}
    if last_eval is not None:
        summary.update(final_return=last_eval.mean_return, **success_record(config, last_eval, prefix="final_"))
    write_json_atomic(os.path.join(args.run_dir, SUMMARY_FILE), summary)
    py_env.close()
    eval_env.close()
    print(f"[{PEER_ALGO}] done: {frames:,} frames, {updates:,} updates in {summary['wall_seconds']:.0f} s "
          f"(update {summary['update_ms']:.1f} ms)")
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = peer_settings(args)["config"]  # every input error before TensorFlow loads
        config.env.probe()
    except ValueError as error:
        print(f"{PEER_ALGO}: error: {error}", file=sys.stderr)
        return 2
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
