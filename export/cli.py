"""`rise-export`: a run's checkpoint -> ONNX step model, checked against the TF policy.

    rise-export runs/pong --out pong.onnx        # latest checkpoint
The model is written to a temporary file, checked (onnx.checker, then TF vs ONNX on a rollout of
real frames with an episode reset in the middle) and only then moved to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

from rise_tf.run_dir import BEST_CHECKPOINT, CHECKPOINTS_DIR, STATE_FILE, best_checkpoint_missing


def check_out_path(out: str) -> Optional[str]:
    """Why --out cannot be written (None if it can), checked before TensorFlow loads."""
    from rise_runtime.paths import file_problem

    if os.path.isdir(out):
        return f"--out {out} is a directory; give a file path inside it, e.g. {os.path.join(out, 'model.onnx')}"
    if not out.endswith(".onnx"):
        return f"--out {out!r} must name an .onnx file (e.g. {os.path.splitext(out)[0] or 'model'}.onnx)"
    return file_problem(out, "--out")


def check_saved_model_path(path: str) -> Optional[str]:
    from rise_runtime.paths import folder_problem

    return folder_problem(path, "--saved-model")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rise-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a rise-train run directory")
    parser.add_argument("--out", required=True, help="path of the .onnx file to write")
    parser.add_argument("--saved-model", default=None, metavar="DIR",
                        help="also write a TF-Agents PolicySaver SavedModel to DIR (for TensorFlow users)")
    parser.add_argument("--checkpoint", default=None,
                        help="a checkpoint directory, or 'best': the best evaluation's weights (checkpoints/best, "
                             "kept by every run that evaluates) [default: the latest]")
    parser.add_argument("--parity-steps", type=int, default=64, help="rollout length of the parity check")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |Q_tf - Q_onnx| allowed")
    args = parser.parse_args(argv)
    if args.parity_steps < 2:
        parser.error("--parity-steps must be >= 2 (the rollout resets half-way)")
    problem = check_out_path(args.out) or (check_saved_model_path(args.saved_model) if args.saved_model else None)
    if not problem and os.path.isfile(args.run_dir):
        problem = f"{args.run_dir} is not a run directory (it is a file); give a rise-train --run-dir"
    if not problem and args.checkpoint == BEST_CHECKPOINT and os.path.isdir(args.run_dir) \
            and not os.path.isfile(os.path.join(args.run_dir, CHECKPOINTS_DIR, BEST_CHECKPOINT, STATE_FILE)):
        problem = best_checkpoint_missing(args.run_dir)
    if problem:
        print(f"rise-export: error: {problem}; nothing written", file=sys.stderr)
        return 2

    from rise_tf.startup import quiet_third_party_startup

    quiet_third_party_startup()
    from rise_tf.export import step_model
    from rise_tf.parts.checkpoints import CheckpointError
    from rise_runtime.envs.gym_image import EnvSpecError

    started = time.time()
    # The model is written here first and moved to --out only once it has passed the parity check.
    candidate = os.path.join(os.path.dirname(os.path.abspath(args.out)), f".{os.path.basename(args.out)}.unchecked")
    try:
        os.makedirs(os.path.dirname(candidate), exist_ok=True)
        loaded = step_model.load_policy(args.run_dir, args.checkpoint)
        step, names = step_model.export_onnx(loaded, candidate)
        try:
            frames, resets = step_model.rollout_frames(loaded, args.parity_steps)
            checked_on = f"real {loaded.config.env_name} frames"
        except EnvSpecError as error:  # the model needs no env; only this check would like its frames
            frames, resets = step_model.random_frames(loaded, args.parity_steps)
            checked_on = (f"random frames (the run's env cannot be built here: "
                          f"{str(error).split('. Install')[0][:160]})")
        report = step_model.check_parity(step, names, candidate, frames, resets, args.tolerance,
                                           step_model.stored_state_dtypes(loaded.config))
        if report.passed:
            os.replace(candidate, args.out)
    except (step_model.ExportError, CheckpointError, ValueError, OSError) as error:
        print(f"rise-export: error: {error}; nothing written", file=sys.stderr)
        return 2
    finally:
        if os.path.exists(candidate):
            os.remove(candidate)
    summary = (f"parity over {report.steps} {checked_on} ({report.resets} resets): "
               f"max |ΔQ| = {report.max_abs_q_difference:.2e} (tolerance {report.tolerance:g}), carried state: "
               f"max |Δ| {max(report.max_abs_state_difference.values(), default=0.0):.2e}, "
               f"{sum(report.state_mismatches.values())} values beyond the tolerance plus one rounding step, "
               f"greedy-action mismatches: {report.action_mismatches}")
    if not report.passed:
        print(f"rise-export: error: the ONNX model does not match the TF policy; nothing written. {summary}",
              file=sys.stderr)
        return 1
    if args.saved_model:
        import logging

        # PolicySaver logs a harmless "Issue encountered when serializing global_step" warning.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        try:
            step_model.export_saved_model(loaded, args.saved_model)
        except (OSError, ValueError) as error:  # the ONNX model of this call goes too: all or nothing
            os.remove(args.out)
            print(f"rise-export: error: the SavedModel could not be written to {args.saved_model} "
                  f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); nothing written", file=sys.stderr)
            return 2
    print(f"[rise-export] {loaded.checkpoint} ({loaded.frames_trained:,} frames) -> {args.out} "
          f"({os.path.getsize(args.out) / 1e6:.1f} MB) in {time.time() - started:.0f} s")
    print(f"[rise-export] {summary}")
    print(f"[rise-export] actions: {json.dumps(loaded.action_meanings)}; state: {', '.join(names)}")
    if args.saved_model:
        print(f"[rise-export] TF-Agents SavedModel: {args.saved_model} "
              f"(tf.saved_model.load(...).action(time_step, policy_state))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
