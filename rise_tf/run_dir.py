"""A run directory's files and the checks made before anything is written. TensorFlow-free.

The one place that knows a run directory's layout (file names, atomic writes, config loading):
trainer, peers, experiments, analysis and export all go through it.

    <run_dir>/config.json    the resolved RunConfig (written atomically)
              env.json       the env's name and action meanings (export needs no env to rebuild the policy)
              metrics.jsonl  training and evaluation records
              summary.json   the run's totals, rewritten when a run ends
              checkpoints/   ckpt-<frames>/{variables.*, state.json, replay/replay.npz}: rise_tf.parts.checkpoints
              tensorboard/
              logs/          a distributed run's process logs and processes.json (the launcher's)
              replay_server/ the replay server's Reverb checkpoints; replay_server.json its address

`rise-train` calls the checks first (config, replay memory, run directory), so bad input ends with
a message that names the cause and the fix, before TensorFlow loads and before a file is written.
"""
from __future__ import annotations

import json
import math
import os
from typing import Optional

from rise_tf.networks.choices import SNAPSHOT_PREFIX, keras_weights_path, parse_frozen_encoder
from rise_tf.config import RunConfig, env_description, replay_layout
from rise_tf.replay.persistence import DATA_FILE as REPLAY_DATA_FILE  # noqa: F401  (the replay's own format)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
ENV_FILE = "env.json"
CHECKPOINTS_DIR = "checkpoints"
BEST_CHECKPOINT = "best"  # checkpoints/best: the weights of the best evaluation so far (rise-export --checkpoint best)
TENSORBOARD_DIR = "tensorboard"
EXPERIMENT_FILE = "experiment.json"  # in an experiment directory, above its runs
STATE_FILE = "state.json"  # in a checkpoint: counters and config, written last (marks it complete)
CHECKPOINT_REPLAY_DIR = "replay"  # in a checkpoint, with --save-replay
LOGS_DIR = "logs"
PROCESSES_FILE = "processes.json"  # in logs/
SERVER_LOG = "replay_server.log"  # in logs/
SERVER_DIR = "replay_server"  # the replay server's Reverb checkpoints
SERVER_FILE = "replay_server.json"  # the replay server's address and pid


def best_checkpoint_missing(run_dir: str) -> str:
    """Why --checkpoint best cannot be used on a run that has kept no best checkpoint."""
    return (f"--checkpoint best: {run_dir} has no best checkpoint. One is kept at each evaluation that beats the "
            f"earlier ones, and this run has not evaluated (--eval-every-frames 0, or it stopped before its first "
            f"evaluation): export its latest checkpoint (no --checkpoint), or --resume it with evaluations")


def checkpoint_replay_dir(checkpoint: str) -> str:
    return os.path.join(checkpoint, CHECKPOINT_REPLAY_DIR)


def logs_dir(run_dir: str) -> str:
    return os.path.join(run_dir, LOGS_DIR)


def actor_log(index: int) -> str:
    """The file name (in logs/) of actor `index`'s log."""
    return f"actor-{index}.log"


class RunDirError(ValueError):
    """A run directory or a run's resources that cannot be used; the message names the fix."""


def write_file_atomic(path: str, data) -> None:
    """Writes `data` (str or bytes) to `path` via a temporary file beside it and a rename: a crash
    leaves the old or the new file, never half of one, and a failed write leaves nothing behind."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def strict_json(value, indent: Optional[int] = None) -> str:
    """JSON that other tools accept: NaN and ±inf (a diverged loss, an empty mean) become null."""
    def clean(item):
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {key: clean(entry) for key, entry in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(entry) for entry in item]
        return item
    return json.dumps(clean(value), indent=indent, allow_nan=False)


def write_json_atomic(path: str, value) -> None:
    """`value`: JSON text, or anything json.dumps takes (written indented, strict)."""
    write_file_atomic(path, value if isinstance(value, str) else strict_json(value, indent=2))


def append_metrics(run_dir: str, record: dict) -> None:
    """One line of metrics.jsonl (strict JSON)."""
    with open(os.path.join(run_dir, METRICS_FILE), "a") as f:
        f.write(strict_json(record) + "\n")


def trim_metrics(run_dir: str, frames: int) -> int:
    """Drops the metrics.jsonl records past `frames` (and lines cut by a crash), atomically: a run
    resumed from the checkpoint at `frames` (0 with none) replays those steps, and its log must tell
    one history, not the lost one and the new one. Returns how many records were dropped."""
    path = os.path.join(run_dir, METRICS_FILE)
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("frames", 0) <= frames:
            kept.append(line if line.endswith("\n") else line + "\n")
    if len(kept) < len(lines):
        write_file_atomic(path, "".join(kept))
    return len(lines) - len(kept)


def read_summary(run_dir: str) -> Optional[dict]:
    """The run's summary.json, or None while it has none (or it cannot be read)."""
    try:
        with open(os.path.join(run_dir, SUMMARY_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def has_run_config(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, CONFIG_FILE))


def write_run_config(run_dir: str, config: RunConfig) -> None:
    os.makedirs(run_dir, exist_ok=True)
    write_json_atomic(os.path.join(run_dir, CONFIG_FILE), config.to_json())


def load_run_config(run_dir: str) -> RunConfig:
    path = os.path.join(run_dir, CONFIG_FILE)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise RunDirError(f"{run_dir} is a file, not a rise-tf run directory. Give the directory a run was "
                          f"trained in (it holds {CONFIG_FILE}).")
    try:
        with open(path) as f:
            return RunConfig.from_dict(json.load(f)).validate()
    except FileNotFoundError:
        raise RunDirError(f"{run_dir} is not a rise-tf run: {CONFIG_FILE} is missing. Start one with "
                          f"rise-train --run-dir {run_dir}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as error:
        raise RunDirError(f"{path} is not a valid rise-tf run config ({error}). Restore it from the "
                          f"run's checkpoints or start a new run.") from None


def write_env_info(run_dir: str, config: RunConfig, action_meanings) -> None:
    """env.json: the env's name, its description (the runtime's env registry rebuilds the env from it:
    rise_runtime.envs.registry) and its action meanings."""
    write_json_atomic(os.path.join(run_dir, ENV_FILE), {"name": config.env_name, "env": env_description(config),
                                                        "action_meanings": list(action_meanings)})


def load_env_info(run_dir: str) -> Optional[dict]:
    """{"name", "env" (the registry's description; older runs lack it), "action_meanings"} of the run's
    env, or None for runs that predate env.json."""
    try:
        with open(os.path.join(run_dir, ENV_FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunDirError(f"{os.path.join(run_dir, ENV_FILE)} is not valid JSON ({error}); delete it and the "
                          f"export rebuilds the env instead.") from None


def resolve_frozen_encoder(config: RunConfig) -> RunConfig:
    """Checks that a snapshot or Keras ϑ can be built (before TensorFlow loads) and records a
    snapshot's run directory as an absolute path. Raises RunDirError naming the fix."""
    if config.network.memory != "rise":
        return config
    kind, argument = parse_frozen_encoder(config.network.frozen_encoder)
    if kind == "keras":
        path = keras_weights_path(argument)
        if not os.path.isfile(path):
            raise RunDirError(
                f"the {argument} ImageNet weights are not in the Keras cache ({path}); rise-tf never downloads at "
                f"run time. Fetch them once on a machine with a network: python -c \"import tensorflow as tf; "
                f"tf.keras.applications.{argument}(include_top=False, weights='imagenet')\" (or copy the file there; "
                f"KERAS_HOME moves the cache).")
        if config.env.frame_size < 32:
            raise RunDirError(f"{argument} needs frames of at least 32 pixels; raise --frame-size")
        return config
    if kind != "snapshot":
        return config
    source_dir = os.path.abspath(argument)
    source = load_run_config(source_dir)  # RunDirError when it is not a run
    checkpoints = os.path.join(source_dir, "checkpoints")
    if not os.path.isdir(checkpoints) or not any(name.startswith("ckpt-") for name in os.listdir(checkpoints)):
        raise RunDirError(f"{source_dir} has no checkpoint yet: a snapshot needs a trained φ (train that run first)")
    if source.env.frame_size != config.env.frame_size:
        raise RunDirError(f"the snapshot's φ was trained on {source.env.frame_size}-pixel frames; this run uses "
                          f"{config.env.frame_size}. Set --frame-size {source.env.frame_size}.")
    return config.replace(network={"frozen_encoder": SNAPSHOT_PREFIX + source_dir})


def check_writable_run_dir(run_dir: str) -> None:
    """Creates `run_dir` (if needed) and proves a file can be written in it; raises RunDirError with
    the reason otherwise. Permission bits alone do not tell (root ignores them), so this tries."""
    if not run_dir or not run_dir.strip():
        raise RunDirError("--run-dir is empty; give a directory path, e.g. --run-dir runs/pong")
    path = os.path.abspath(run_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirError(f"--run-dir {run_dir} is a file, not a directory; choose a directory path "
                          f"(it will be created).")
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise RunDirError(f"--run-dir {run_dir} lies under {ancestor}, which is a file; choose a path under "
                          f"a directory.")
    probe = os.path.join(path, f".write-test-{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise RunDirError(f"cannot write the run directory {run_dir} ({error.strerror or error}); choose a "
                          f"directory you can write to with --run-dir.") from None


def available_memory_bytes() -> Optional[int]:
    """Memory the kernel says a new allocation can get (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_replay_fits(config: RunConfig, available: Optional[int] = None) -> int:
    """Estimates the replay's bytes before anything is allocated; raises RunDirError when they exceed
    the memory available. Returns the estimate."""
    layout = replay_layout(config)
    needed = layout.estimated_bytes()
    available = available_memory_bytes() if available is None else available
    if available is not None and needed > available:
        per_step = needed / max(layout.capacity, 1)
        fits = int(available * 0.8 / per_step)
        raise RunDirError(
            f"replay --capacity {config.replay.capacity:,} needs about {needed / 2**30:.1f} GiB "
            f"({per_step:,.0f} bytes per step at {config.env.frame_size}x{config.env.frame_size}), but only "
            f"{available / 2**30:.1f} GiB of memory is available. Lower --capacity (about {fits:,} fits) or "
            f"--frame-size.")
    return needed
