"""What every training process does first, before it builds anything: the run directory (a new run's
config.json, or a resumed run's own config), the learner's device and strategy, seeds and op
determinism. Shared by the in-process trainer and the distributed learner."""
from __future__ import annotations

import dataclasses
import os
import sys

import tensorflow as tf

from rise_tf.config import RunConfig
from rise_tf.parts.run import TrainingError
from rise_tf.run_dir import CONFIG_FILE, load_run_config, write_run_config
from rise_tf.parts.devices import configure_learner_device, learner_strategy


def prepare_run_dir(run_dir: str, config: RunConfig, resume: bool) -> RunConfig:
    """Writes config.json for a new run, or checks it for a resumed one. Returns the run's config."""
    if resume:
        return load_run_config(run_dir)
    if os.path.exists(os.path.join(run_dir, CONFIG_FILE)):
        existing = load_run_config(run_dir)
        if existing.algo != config.algo:
            raise TrainingError(
                f"{run_dir} holds a {existing.algo} run; it cannot continue as {config.algo}. Continue it with "
                f"--resume {run_dir} (as {existing.algo}), or choose a new --run-dir for {config.algo}.")
        differences = existing.differences(config)
        if differences:
            raise TrainingError(
                f"{run_dir} holds a run with another config ({'; '.join(differences[:6])}"
                f"{' ...' if len(differences) > 6 else ''}). Continue it with --resume {run_dir}, or choose "
                f"a new --run-dir for this config.")
        raise TrainingError(f"{run_dir} already holds this run. Continue it with --resume {run_dir}, or "
                            f"choose a new --run-dir.")
    write_run_config(run_dir, config)
    return config


@dataclasses.dataclass
class Process:
    config: RunConfig  # the run's (a resumed run's own, with the budget and distributed settings given)
    device: str  # the learner's device, e.g. /CPU:0 or /GPU:0
    strategy: object  # a tf.distribute strategy for a mirrored learner, or None


def start_training_process(config: RunConfig, run_dir: str, resume: bool, log_prefix: str) -> Process:
    # First, before any TF op initialises a GPU: memory growth can only be set before that.
    device = configure_learner_device()
    planned = load_run_config(run_dir) if resume and os.path.exists(os.path.join(run_dir, CONFIG_FILE)) else config
    try:  # before anything is written: a host without the devices asked for
        strategy = learner_strategy(planned.train.learner_replicas)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    run_config = prepare_run_dir(run_dir, config, resume)
    if resume:
        # What a resume may change (the budget, the distributed settings); persisted so a later plain
        # --resume keeps it.
        changed = run_config.replace(train={"frames": config.train.frames},
                                     distributed=dataclasses.asdict(config.distributed))
        if changed != run_config:
            run_config = changed
            write_run_config(run_dir, run_config)
    train = run_config.train
    if train.mixed_precision and device == "/CPU:0":
        print(f"{log_prefix} warning: --mixed-precision on a host without a GPU: CPUs have no fast float16, so "
              "the learner runs many times slower (bench.md: ~24x on this project's CPU). It is meant for GPUs "
              "with tensor cores; drop the flag here.", file=sys.stderr)
    tf.keras.utils.set_random_seed(train.seed)  # Python, numpy and TF: Keras initializers draw from Python's random
    if train.deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    return Process(run_config, device, strategy)
