"""`rise-experiment`: the project's claims as commands anyone can rerun.

    rise-experiment memory --seeds 3                  # base vs RISE vs full-recurrent, memory task
    rise-experiment ablations --seeds 2               # RISE implementation choices, memory task
    rise-experiment atari --games atari5 --frames 10M --seeds 3   # base vs RISE (a GPU machine)
    rise-experiment memory --games MortarMayhem-Grid-v0 --env-module memory_gym \
        --variants btr,rise-btr,tfa-rnn-dqn --frames 100k      # an outside env, at the CPU scale
Every run is a normal rise-train run dir under --out; rerunning the same command skips finished runs
and resumes interrupted ones. A report (tables + plots, see rise-report) is written at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from typing import List, Optional

from rise_tf.counts import parse_count
from rise_runtime.envs.gym_image import parse_reset_options, probe_env
from rise_runtime.envs.memory_task import is_memory_task
from rise_tf.run_dir import EXPERIMENT_FILE, has_run_config, read_summary, write_json_atomic
from rise_tf.experiments.plan import (ALL_VARIANTS, DEFAULT_FRAMES, EXPERIMENTS, RunSpec, build_plan,
                                      missing_keras_weights)
from rise_tf.networks.choices import keras_weights_path



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rise-experiment", description=__doc__.split("\n\n")[0].replace("`", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS), help="which experiment")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant and game [default: 3]")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed+seeds-1")
    parser.add_argument("--frames", type=parse_count, default=None,
                        help="budget per run in emulator frames (2M, 500k) [default: memory/ablations "
                             f"{DEFAULT_FRAMES['memory']:,}, atari {DEFAULT_FRAMES['atari']:,}]")
    parser.add_argument("--games", action="append", default=[],
                        help="atari: atari5, atari100k or game names (comma list); ablations: run them "
                             "on these games instead of the standard memory task: Atari names, memory-task names "
                             "(MemoryCorridorHard, ...; memory = all of them); any experiment: gymnasium ids of "
                             "outside envs (MortarMayhem-Grid-v0, MyOrg/MyGame-v1), run with --env-id, evaluated "
                             "10 times per run")
    parser.add_argument("--env-module", default=None,
                        help="the module that registers the outside envs' ids (memory_gym, vizdoom.gymnasium_wrapper)")
    parser.add_argument("--image-key", default=None, help="outside envs with Dict observations: the image's key")
    parser.add_argument("--reset-options", default=None,
                        help="outside envs: a JSON object passed to every env.reset(options=...), the task's settings "
                             "(Memory Gym: '{\"command_count\": [2]}'); run dirs and reports name the task with them "
                             "(MortarMayhem-Grid-v0[command_count=2])")
    parser.add_argument("--variants", action="append", default=[],
                        help="run only these variants (comma list), e.g. base,rise; a variant with settings of its "
                             "own: rise-btr+window-length=96 (+flag=value, repeatable). Known: " + ", ".join(ALL_VARIANTS))
    parser.add_argument("--out", default=None, help="experiment directory [default: runs/experiments/<experiment>]")
    parser.add_argument("--report-dir", default=None, help="where the report goes [default: <out>/report]")
    parser.add_argument("--no-report", action="store_true", help="skip the report at the end")
    parser.add_argument("--dry-run", action="store_true", help="print the runs and their rise-train commands, run nothing")
    parser.add_argument("--train-arg", action="append", default=[], metavar="FLAG=VALUE",
                        help="extra rise-train setting for every run (repeatable): num-envs=16, no-progress")
    return parser


def _run_state(run_dir: str, frames: int) -> str:
    """'new', 'done', or 'resume' (a run dir holding an unfinished or shorter run)."""
    if not has_run_config(run_dir):
        return "new"
    summary = read_summary(run_dir) or {}
    if summary.get("completed") and summary.get("frames", 0) >= frames:
        return "done"
    return "resume"


def _write_experiment_file(out: str, experiment: str, plan: List[RunSpec], frames: int) -> None:
    """experiment.json: what the runs are (rise-report labels runs with it). Keeps earlier runs."""
    path = os.path.join(out, EXPERIMENT_FILE)
    runs = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                runs = {r["dir"]: r for r in json.load(f).get("runs", [])}
        except (OSError, ValueError, KeyError, TypeError):
            runs = {}
    for spec in plan:
        runs[spec.relative_dir] = {"dir": spec.relative_dir, "variant": spec.variant.name, "game": spec.game,
                                   "seed": spec.seed, "algo": spec.variant.algo, "note": spec.variant.note,
                                   "overrides": dict(spec.variant.overrides), "frames": spec.frames}
    order = []  # this plan's variants first, then those of earlier invocations
    for name in [spec.variant.name for spec in plan] + (_read_order(path) if os.path.exists(path) else []):
        if name not in order:
            order.append(name)
    record = {"experiment": experiment, "frames": frames, "command": shlex.join(sys.argv), "variants": order,
              "runs": sorted(runs.values(), key=lambda r: (r["seed"], r["game"], r["variant"]))}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(path, record)


def _read_order(path: str) -> List[str]:
    try:
        with open(path) as f:
            return [str(v) for v in json.load(f).get("variants", [])]
    except (OSError, ValueError, AttributeError):
        return []


def _train_command(spec: RunSpec, out: str, state: str, extra: List[str]) -> List[str]:
    command = [sys.executable, "-m", spec.variant.runner]
    run_dir = os.path.join(out, spec.relative_dir)
    if state == "resume" and spec.variant.runner == "rise_tf.train.cli":  # peers start unfinished runs over
        return command + ["--resume", run_dir, "--frames", str(spec.frames)]
    return command + spec.train_args(out) + extra + ["--run-dir", run_dir]


def _extra_train_args(items: List[str]) -> List[str]:
    """['num-envs=16', 'no-progress'] -> ['--num-envs', '16', '--no-progress']."""
    args = []
    for item in items:
        flag, sep, value = item.partition("=")
        flag = flag.strip().lstrip("-")
        if not flag or (sep and not value.strip()):
            raise ValueError(f"--train-arg wants FLAG=VALUE or a bare switch (num-envs=16, no-progress), "
                             f"got {item!r}")
        args += [f"--{flag}"] + ([value.strip()] if sep else [])
    return args


def _run_child(command: List[str]) -> int:
    """Runs one rise-train and returns its exit code. Ctrl-C reaches the child too (same process
    group): the parent waits while the child saves its checkpoint, instead of killing it mid-save."""
    process = subprocess.Popen(command)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


def _summary_line(run_dir: str) -> str:
    s = read_summary(run_dir)
    if s is None:
        return "no summary"
    parts = [f"{s['frames']:,} frames in {s['wall_seconds']:.0f} s", f"update {s['update_ms']:.1f} ms"]
    if s.get("final_human_normalized") is not None:
        parts.append(f"eval HNS {s['final_human_normalized']:.3f}")
    if "final_return" in s:
        parts.append(f"eval return {s['final_return']:.2f}")
    if is_memory_task(s.get("game", "")) and "final_success_rate" in s:
        parts.append(f"success {s['final_success_rate']:.0%}")
    return "; ".join(parts)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    frames = args.frames or DEFAULT_FRAMES[args.experiment]
    try:
        env_settings = tuple((flag, value) for flag, value in (("env-module", args.env_module),
                                                                ("image-key", args.image_key),
                                                                ("reset-options", args.reset_options)) if value)
        reset_options = parse_reset_options(args.reset_options)
        plan = build_plan(args.experiment, args.seeds, frames, args.games, args.variants, args.first_seed,
                          env_settings)
        for game in dict.fromkeys(spec.game for spec in plan if spec.env_id):  # each outside env made once, now
            probe_env(game, env_module=args.env_module, image_key=args.image_key, reset_options=reset_options)
        extra = _extra_train_args(args.train_arg)
    except ValueError as error:
        parser.error(str(error))
    out = args.out or os.path.join("runs", "experiments", args.experiment)
    missing = missing_keras_weights(plan)
    for name, model in missing.items():
        print(f"[rise-experiment] leaving out {name}: the {model} ImageNet weights are not in the Keras cache "
              f"({keras_weights_path(model)}), and rise-tf never downloads at run time. Fetch them once where there "
              f"is a network (python -c \"import tensorflow as tf; tf.keras.applications.{model}(include_top=False, "
              f"weights='imagenet')\") or copy the file there.", file=sys.stderr)
    plan = [spec for spec in plan if spec.variant.name not in missing]
    if not plan:
        parser.error("no runs left to do: every chosen variant needs Keras weights this machine lacks (see above)")
    states = [_run_state(os.path.join(out, spec.relative_dir), spec.frames) for spec in plan]
    print(f"[rise-experiment] {args.experiment}: {len(plan)} runs ({sum(s == 'done' for s in states)} done) "
          f"of {frames:,} frames each, in {out}")
    if args.dry_run:
        for spec, state in zip(plan, states):
            print(f"  [{state}] {spec.relative_dir}: "
                  + shlex.join(_train_command(spec, out, state, extra)[3:]))
        return 0
    _write_experiment_file(out, args.experiment, plan, frames)
    failed, started = [], time.time()
    for index, (spec, state) in enumerate(zip(plan, states), start=1):
        run_dir = os.path.join(out, spec.relative_dir)
        label = f"({index}/{len(plan)}) {spec.relative_dir}"
        if state == "done":
            print(f"[rise-experiment] {label}: already done ({_summary_line(run_dir)})")
            continue
        print(f"[rise-experiment] {label}: {'resuming' if state == 'resume' else 'starting'}; "
              f"{time.time() - started:.0f} s into this experiment", flush=True)
        code = _run_child(_train_command(spec, out, state, extra))
        if code == 130:
            print(f"[rise-experiment] interrupted; rerun the same command to resume from {run_dir}.",
                  file=sys.stderr)
            return 130
        if code != 0:
            failed.append(spec.relative_dir)
            print(f"[rise-experiment] {label} failed (exit {code}); going on with the other runs.", file=sys.stderr)
            continue
        print(f"[rise-experiment] {label}: {_summary_line(run_dir)}", flush=True)
    if not args.no_report:
        from rise_tf.analysis.report import write_report

        report_dir = args.report_dir or os.path.join(out, "report")
        # Compared with the plan's first variant: base for memory/atari, the default RISE for ablations.
        written = write_report(out, report_dir, name=args.experiment, baseline=plan[0].variant.name)
        print(f"[rise-experiment] report: {', '.join(written)}")
    if failed:
        print(f"[rise-experiment] {len(failed)} run(s) failed: {', '.join(failed)}. Their logs are above; "
              f"rerun the command to retry them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
