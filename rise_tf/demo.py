"""`make demo`: the main job end to end on a CPU in minutes.

1. RISE-DQN on MemoryCorridor until it solves it (the cue is 9 steps before the decision; a 4-frame
   stack cannot see it), then a greedy evaluation.
2. A short RISE-DQN run on a real Atari game (Pong): collection with the TF-Agents driver, learning,
   an atomic checkpoint, a greedy evaluation with the raw and human-normalized score.
3. Export of that checkpoint to an ONNX step model, checked against the TF policy on real frames.
4. One episode played by the TensorFlow-free runner (rise_runtime), recorded to MP4.
It prints what happened and where the files are.
"""
from __future__ import annotations

import argparse
import os
import time

from rise_tf.startup import quiet_third_party_startup
from rise_tf.counts import parse_count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/demo", help="where the demo's runs go")
    parser.add_argument("--memory-frames", type=parse_count, default=20_000, help="memory-task budget")
    parser.add_argument("--atari-frames", type=parse_count, default=20_000, help="Atari budget (emulator frames)")
    parser.add_argument("--game", default="Pong", help="Atari game for step 2")
    args = parser.parse_args(argv)
    quiet_third_party_startup()
    from rise_tf import builder
    from rise_tf.config import make_config
    from rise_tf.parts.evaluator import evaluate
    from rise_tf.train.trainer import Trainer

    stamp = time.strftime("%Y%m%d-%H%M%S")
    report = []

    print(f"[demo] 1/4 RISE-DQN on MemoryCorridor, {args.memory_frames:,} frames")
    memory_dir = os.path.join(args.out, f"memory-{stamp}")
    config = make_config("rise-dqn", "MemoryCorridor", train={"frames": args.memory_frames, "eval_every_frames": 0})
    trainer = Trainer(config, memory_dir)
    started = time.time()
    try:
        trainer.run()
        env = builder.make_env(config, num_envs=16, seed_offset=50_000, training=False)
        result = evaluate(trainer.agent.policy, env, 64, "MemoryCorridor")
        env.close()
    finally:
        trainer.close()
    report.append(f"MemoryCorridor: greedy success {result.success_rate:.0%} over 64 episodes "
                  f"(chance 50%) after {args.memory_frames:,} frames, {time.time() - started:.0f} s; run: {memory_dir}")

    print(f"[demo] 2/4 RISE-DQN on {args.game}, {args.atari_frames:,} frames (a smoke run: learning Atari "
          f"takes millions of frames)")
    atari_dir = os.path.join(args.out, f"{args.game.lower()}-{stamp}")
    config = make_config("rise-dqn", args.game, env={"num_envs": 4}, replay={"capacity": 50_000},
                         train={"frames": args.atari_frames, "warmup_frames": min(8_000, args.atari_frames // 2),
                                "eval_every_frames": args.atari_frames, "eval_episodes": 2,
                                "checkpoint_every_frames": args.atari_frames})
    config = config.replace(env={"max_episode_frames": 20_000})  # keep the evaluation short
    trainer = Trainer(config, atari_dir)
    started = time.time()
    try:
        summary = trainer.run()
    finally:
        trainer.close()
    report.append(f"{args.game}: {summary['frames']:,} frames at {summary['fps']:.0f} frames/s, "
                  f"{summary['updates']:,} updates; greedy eval return {summary.get('final_return', float('nan')):.1f}; "
                  f"checkpoint: {summary['checkpoint']}")
    print("[demo] 3/4 export to ONNX, with a parity check on real frames")
    from rise_tf.export import step_model
    from rise_runtime.play import play
    from rise_runtime.runner import Policy

    onnx_path = os.path.join(atari_dir, f"{args.game.lower()}.onnx")
    loaded = step_model.load_policy(atari_dir)
    step, names = step_model.export_onnx(loaded, onnx_path)
    frames, resets = step_model.rollout_frames(loaded, 64)
    parity = step_model.check_parity(step, names, onnx_path, frames, resets,
                                      rounded_to=step_model.stored_state_dtypes(loaded.config))
    if not parity.passed:
        raise SystemExit(f"[demo] export parity failed: {parity}")
    report.append(f"ONNX step model: {onnx_path} ({os.path.getsize(onnx_path) / 1e6:.1f} MB); parity over "
                  f"{parity.steps} frames, max |ΔQ| {parity.max_abs_q_difference:.1e}, 0 action mismatches")

    print("[demo] 4/4 one episode with the TensorFlow-free runner, recorded")
    video = os.path.join(atari_dir, f"{args.game.lower()}.mp4")
    env = loaded.config.env
    result = play(Policy.load(onnx_path), env.game, episodes=1, realtime=False, record=video, seed=loaded.config.train.seed,
                  max_episode_frames=env.max_episode_frames, sticky_action_prob=env.sticky_action_prob,
                  flicker=env.flicker)
    report.append(f"rise-play: score {result['mean_score']:g} in {result['steps']} steps, policy latency p50 "
                  f"{result['latency_p50_ms']:.2f} ms / p99 {result['latency_p99_ms']:.2f} ms (1 CPU thread); "
                  f"video: {video}")
    print("\n[demo] summary")
    for line in report:
        print(f"  - {line}")
    print(f"  TensorBoard: .venv/bin/tensorboard --logdir {args.out}")
    print(f"  Play again: .venv/bin/rise-play {onnx_path} --realtime")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
