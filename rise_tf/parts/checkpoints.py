"""Atomic checkpoints of a run: TF variables + counters + RNG state (+ optionally the replay).

A checkpoint is a directory `checkpoints/ckpt-<frames>`. It is written in full under a temporary
name and renamed into place only when complete (a POSIX rename is atomic), so a crash or Ctrl-C
mid-write never leaves a half-written checkpoint: readers ignore `.tmp-*` directories and the
previous checkpoint stays valid. `state.json` is written last and marks completeness.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import tensorflow as tf

from rise_tf.run_dir import BEST_CHECKPOINT, CHECKPOINTS_DIR, STATE_FILE
VARIABLES_PREFIX = "variables"
_NAME = re.compile(r"ckpt-(\d{12})")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the cause and the fix."""


def checkpoint_dir(run_dir: str) -> str:
    return os.path.join(run_dir, CHECKPOINTS_DIR)


def list_checkpoints(run_dir: str) -> List[str]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_dir(run_dir)
    if not os.path.isdir(root):
        return []
    names = sorted(name for name in os.listdir(root) if _NAME.fullmatch(name))
    return [os.path.join(root, name) for name in names]


def latest_checkpoint(run_dir: str) -> Optional[str]:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def best_checkpoint(run_dir: str) -> Optional[str]:
    """checkpoints/best (the best evaluation's weights), when the run has kept one."""
    path = os.path.join(checkpoint_dir(run_dir), BEST_CHECKPOINT)
    return path if os.path.isfile(os.path.join(path, STATE_FILE)) else None


def _temporary(root: str, frames: int) -> str:
    # The name remove_stale_temporaries knows: what a killed process leaves behind is cleaned up.
    return os.path.join(root, f".tmp-ckpt-{frames:012d}-{os.getpid()}-{time.time_ns()}")


def _write(directory: str, trackables: Dict[str, Any], state: Dict[str, Any],
           extra_writer: Optional[Callable[[str], None]]) -> None:
    os.makedirs(directory)
    tf.train.Checkpoint(**trackables).write(os.path.join(directory, VARIABLES_PREFIX))
    if extra_writer is not None:
        extra_writer(directory)
    with open(os.path.join(directory, STATE_FILE), "w") as f:
        json.dump(state, f, indent=2)
        f.flush()
        os.fsync(f.fileno())


def save(run_dir: str, frames: int, trackables: Dict[str, Any], state: Dict[str, Any], keep: int,
         extra_writer: Optional[Callable[[str], None]] = None) -> str:
    """Writes a checkpoint for `frames` and prunes to the newest `keep`. Returns its path."""
    root = checkpoint_dir(run_dir)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"ckpt-{frames:012d}")
    temporary = _temporary(root, frames)
    try:
        _write(temporary, trackables, state, extra_writer)
        if os.path.exists(final):  # same frame count saved twice (e.g. Ctrl-C right after a save)
            shutil.rmtree(final)
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_best(run_dir: str, frames: int, trackables: Dict[str, Any], state: Dict[str, Any]) -> str:
    """Writes checkpoints/best (never pruned, never resumed from). The new one is complete before the
    old one moves aside, so a crash leaves the old best, the new one, or (between two renames) the
    new one under a temporary name that the next start removes: never a half-written best."""
    root = checkpoint_dir(run_dir)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, BEST_CHECKPOINT)
    temporary = _temporary(root, frames)
    try:
        _write(temporary, trackables, state, None)
        retired = None
        if os.path.exists(final):
            retired = _temporary(root, frames)
            os.rename(final, retired)
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
    return final


def drop_best_after(run_dir: str, frames: int) -> Optional[int]:
    """Removes checkpoints/best when it was saved past `frames`: a run resumed from the checkpoint at
    `frames` runs those steps again, and a best from the lost ones would not be the evaluation its
    log and summary name. Returns the removed best's frames, or None."""
    path = best_checkpoint(run_dir)
    if path is None:
        return None
    try:
        best_frames = int(load_state(path)["frames"])
    except (CheckpointError, OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: left for export to report, as before
    if best_frames <= frames:
        return None
    shutil.rmtree(path)
    return best_frames


_TEMPORARY = re.compile(r"\.tmp-ckpt-\d{12}-(\d+)-\d+")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(run_dir: str) -> List[str]:
    """Deletes the half-written checkpoint directories of processes that no longer run (a `kill -9`
    mid-save leaves one behind; readers already ignore them). Returns what it removed."""
    root = checkpoint_dir(run_dir)
    if not os.path.isdir(root):
        return []
    removed = []
    for name in sorted(os.listdir(root)):
        match = _TEMPORARY.fullmatch(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(name)
    return removed


def load_state(path: str) -> Dict[str, Any]:
    state_path = os.path.join(path, STATE_FILE)
    try:
        with open(state_path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} is incomplete (no {STATE_FILE}). Delete it to resume "
                              f"from the previous checkpoint.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt ({STATE_FILE}: {error}). Delete it to resume "
                              f"from the previous checkpoint.") from None


GLOB_CHARACTERS = "*?["


@contextlib.contextmanager
def readable_by_tensorflow(path: str):
    """TensorFlow finds a checkpoint's files by matching its prefix as a glob pattern, so a directory
    whose name holds * ? or [ (rise-experiment names outside-env runs `Env-v0[option=value]`) is never
    found, escaped or not. Such a directory is read through a temporary symlink named without them."""
    if not any(character in path for character in GLOB_CHARACTERS):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="rise-checkpoint-") as temporary:
        link = os.path.join(temporary, "checkpoint")
        os.symlink(os.path.abspath(path), link)
        yield link


def restore(path: str, trackables: Dict[str, Any], partial: bool = False) -> Dict[str, Any]:
    """Restores variables into `trackables`; returns the saved state dict.

    partial=True restores a subset of what was saved (e.g. only the online network, for export).
    """
    state = load_state(path)
    try:
        with readable_by_tensorflow(path) as readable:
            status = tf.train.Checkpoint(**trackables).read(os.path.join(readable, VARIABLES_PREFIX))
            status.assert_existing_objects_matched()
            if partial:
                status.expect_partial()
    except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError) as error:
        # A truncated data file surfaces as IndexError ("Read less bytes than requested") or DataLossError.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        files = ", ".join(sorted(name for name in os.listdir(path) if name.startswith(VARIABLES_PREFIX)))
        raise CheckpointError(
            f"checkpoint {path} cannot be restored into this model ({type(error).__name__}: {first_line[:200]}; "
            f"files {files}). It is damaged, or was written by a different network config.") from None
    return state


def restore_newest_good(run_dir: str, attempt: Callable[[str], Any], log: Callable[[str], None] = print):
    """Calls attempt(path) on the newest checkpoint, falling back to older ones while they are damaged
    (attempt raises CheckpointError). Returns (attempt's result, path), or (None, None) when the run has
    no checkpoint. Raises CheckpointError naming every damaged one when none can be restored."""
    found = list_checkpoints(run_dir)
    if not found:
        return None, None
    damaged = []
    for path in reversed(found):
        try:
            result = attempt(path)
        except CheckpointError as error:
            damaged.append(str(error))
            log(f"[rise] warning: {error}" + (" Trying the previous checkpoint." if path != found[0] else ""))
            continue
        if damaged:
            log(f"[rise] restored {path} instead; the newer damaged checkpoint(s) are left in place for you to "
                f"inspect or delete (they are not overwritten until training passes their frame count).")
        return result, path
    raise CheckpointError(f"no checkpoint of {run_dir} can be restored ({len(damaged)} tried): "
                          + " | ".join(damaged) + " Start a new run directory, or restore the files from a backup.")
