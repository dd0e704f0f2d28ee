"""`rise-train`: train base DQN, RISE-DQN or the full-recurrent model on Atari or the memory task.

    rise-train --game Pong --algo rise-dqn --frames 2M --run-dir runs/pong
    rise-train --resume runs/pong                 # after Ctrl-C or a crash: continues to the budget
    rise-train --game MemoryCorridor --algo dqn --print-config
Every config field is a flag (see --help); counts accept K/M/G suffixes (2M = 2,000,000).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import List, Optional

from rise_tf.startup import quiet_third_party_startup

quiet_third_party_startup()  # before anything below imports TensorFlow

from rise_tf.counts import parse_count  # noqa: E402,F401  (re-exported: demo and tests use it here)
from rise_tf.train.config import PRESETS, RunConfig, flag_table, make_config  # noqa: E402

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rise-train", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Run directory: config.json, checkpoints/, tensorboard/ (view with tensorboard --logdir), "
               "metrics.jsonl.")
    parser.add_argument("--algo", choices=sorted(PRESETS), default=None,
                        help="preset: dqn (base, frame stack only), rise-dqn, r2d2-lite (full-recurrent) "
                             "[default: rise-dqn]")
    parser.add_argument("--run-dir", default=None,
                        help="where the run lives [default: runs/<game>-<algo>-seed<seed>]")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its latest checkpoint, with its own config")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for section, _ in (("env", None), ("network", None), ("replay", None), ("agent", None), ("train", None)):
        group = parser.add_argument_group(f"{section} settings (defaults shown are the rise-dqn Atari preset)")
        for flag, flag_section, field in flag_table():
            if flag_section != section:
                continue
            kwargs = dict(default=None, dest=f"{section}.{field.name}",
                          help=f"{field.metadata['help']} [default: {field.default}]")
            if isinstance(field.default, bool):
                kwargs["action"] = argparse.BooleanOptionalAction
            elif isinstance(field.default, int):
                kwargs.update(type=parse_count, metavar="N")
            elif isinstance(field.default, float):
                kwargs.update(type=float, metavar="X")
            else:
                kwargs["metavar"] = "NAME"
            group.add_argument(f"--{flag}", **kwargs)
    parser.formatter_class = argparse.HelpFormatter  # defaults are written into each help line
    return parser


def config_from_args(args) -> RunConfig:
    updates = {}
    for key, value in vars(args).items():
        if "." in key and value is not None:
            section, name = key.split(".")
            updates.setdefault(section, {})[name] = value
    game = updates.get("env", {}).get("game", "Pong")
    return make_config(args.algo or "rise-dqn", game, **updates)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from rise_tf.train.trainer import Trainer, TrainingError, load_run_config
    from rise_tf.train.checkpoints import CheckpointError

    try:
        if args.resume:
            given = {k: v for k, v in vars(args).items() if "." in k and v is not None}
            allowed = {"train.frames"}
            if args.algo or set(given) - allowed:
                bad = sorted(set(given) - allowed) + (["algo"] if args.algo else [])
                parser.error(f"--resume continues a run with its own config; only --frames may change "
                             f"(got {', '.join('--' + b.split('.')[-1].replace('_', '-') for b in bad)}). "
                             f"Start a new --run-dir to change settings.")
            config = load_run_config(args.resume)
            if "train.frames" in given:
                config = config.replace(train={"frames": given["train.frames"]}).validate()
            run_dir = args.resume
        else:
            config = config_from_args(args)
            run_dir = args.run_dir or os.path.join(
                "runs", f"{config.env.game}-{config.algo}-seed{config.train.seed}")
        if args.print_config:
            print(config.to_json())
            return 0
        trainer = Trainer(config, run_dir, resume=bool(args.resume), progress=not args.no_progress)
        try:
            summary = trainer.run()
        finally:
            trainer.close()
        return 130 if summary.get("interrupted") else 0
    except (ValueError, TrainingError, CheckpointError) as error:
        print(f"rise-train: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
