"""`rise-train`: train RISE or its bases (DQN, Beyond The Rainbow) on Atari, the memory tasks or a gymnasium
image env (--env-id).

    rise-train --game Pong --algo rise-dqn --frames 2M --run-dir runs/pong
    rise-train --game Phoenix --algo rise-btr --frames 200M --run-dir runs/phoenix
    rise-train --resume runs/pong                 # after Ctrl-C or a crash: continues to the budget
    rise-train --game MemoryCorridor --algo rise-btr --print-config
    rise-train --env-id MyOrg/MyGame-v0 --env-module my_org_games --algo rise-btr --frames 1M
    rise-train --game Pong --flicker 0.5 --algo rise-dqn      # DRQN's flickering Pong
Every config field is a flag (see --help); counts accept K/M/G suffixes (2M = 2,000,000), numbers
accept fractions (--replay-ratio 1/64). --help and bad input answer before TensorFlow loads.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from rise_tf.startup import quiet_third_party_startup

quiet_third_party_startup()  # before anything below imports TensorFlow

from rise_tf.counts import parse_count, parse_real  # noqa: E402,F401  (re-exported: demo and tests use it here)
from rise_tf.run_dir import (RunDirError, check_replay_fits, check_writable_run_dir, load_run_config,  # noqa: E402
                             resolve_frozen_encoder)
from rise_tf.config import RESUMABLE_FIELDS, RESUMABLE_SECTIONS, RunConfig  # noqa: E402
from rise_tf.config_flags import add_config_flags, config_from_args, given_settings  # noqa: E402

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rise-train", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Run directory: config.json, checkpoints/, tensorboard/ (view with tensorboard --logdir), "
               "metrics.jsonl.")
    parser.add_argument("--run-dir", default=None,
                        help="where the run lives [default: runs/<game>-<algo>-seed<seed>]")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its latest checkpoint, with its own config")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--distributed", action="store_true",
                        help="a replay server, --actors actor processes and a learner process on this machine, "
                             "supervised (Reverb; needs the distributed extra); see the distributed settings")
    add_config_flags(parser)
    parser.formatter_class = argparse.HelpFormatter  # defaults are written into each help line
    return parser


def check_distributed(config: RunConfig) -> None:
    """What --distributed needs, before anything starts (its settings are checked with the config)."""
    import importlib.util
    if importlib.util.find_spec("reverb") is None:  # found without importing it (it loads TensorFlow)
        raise ValueError("--distributed needs dm-reverb: pip install -e '.[distributed]'")


def resumed_config(parser: argparse.ArgumentParser, args) -> RunConfig:
    """The run's own config, with what a resume may change (the budget, the distributed settings)."""
    given = given_settings(args)
    changed = {f"{section}.{name}" for section, fields in given.items() for name in fields}
    bad = sorted(key for key in changed if key not in RESUMABLE_FIELDS and key.split(".")[0] not in RESUMABLE_SECTIONS)
    if args.algo or bad:
        bad += ["algo"] if args.algo else []
        parser.error(f"--resume continues a run with its own config (algo included); only --frames and the "
                     f"distributed settings may change (got {', '.join('--' + b.split('.')[-1].replace('_', '-') for b in bad)}). "
                     f"Start a new --run-dir to change settings.")
    config = load_run_config(args.resume)
    return config.replace(**given).validate() if given else config


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # Everything that can be wrong with the input is checked here, before TensorFlow loads and
        # before a file is written.
        if args.resume:
            config = resumed_config(parser, args)
            run_dir = args.resume
        else:
            config = config_from_args(args)
            run_dir = args.run_dir if args.run_dir is not None else os.path.join(
                "runs", f"{config.env_name.replace('/', '-').replace(':', '-')}-{config.algo}-seed{config.train.seed}")
        if args.print_config:
            print(config.to_json())
            return 0
        if not args.resume:
            config = resolve_frozen_encoder(config)
        config.env.probe()
        check_replay_fits(config)
        check_writable_run_dir(run_dir)
        if args.distributed:
            check_distributed(config)
    except (ValueError, RunDirError) as error:
        print(f"rise-train: error: {error}", file=sys.stderr)
        return 2
    if args.distributed:
        from rise_tf.distributed.launcher import launch
        from rise_tf.run_dir import write_run_config
        from rise_tf.parts.run import TrainingError
        from rise_tf.parts.process import prepare_run_dir
        try:
            prepare_run_dir(run_dir, config, resume=bool(args.resume))
            if args.resume:  # a new --frames: the learner reads the run's config.json
                write_run_config(run_dir, config)
        except TrainingError as error:
            print(f"rise-train: error: {error}", file=sys.stderr)
            return 2
        return launch(run_dir, config.distributed, progress=not args.no_progress)

    import tensorflow as tf

    from rise_tf.parts.checkpoints import CheckpointError
    from rise_tf.train.trainer import Trainer, TrainingError

    try:
        trainer = Trainer(config, run_dir, resume=bool(args.resume), progress=not args.no_progress)
        try:
            summary = trainer.run()
        finally:
            trainer.close()
        return 130 if summary.get("interrupted") else 0
    except (ValueError, TrainingError, CheckpointError) as error:
        print(f"rise-train: error: {error}", file=sys.stderr)
        return 2
    except (tf.errors.ResourceExhaustedError, MemoryError):
        # The replay is sized before it is allocated; the networks and batches are not.
        print(f"rise-train: error: out of memory building or training the model. Lower --batch-size, "
              f"--frame-size, --width-scale or --num-envs; the latest checkpoint (if any) is in {run_dir}.",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
