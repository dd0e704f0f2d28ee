"""The checkpointer: atomic checkpoints of a run's variables, counters and (optionally) replay, and the
restore that falls back to the newest good checkpoint when newer ones are damaged. The file format and
atomicity are rise_tf.parts.checkpoints'."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from rise_tf.run_dir import checkpoint_replay_dir
from rise_tf.parts import checkpoints


class Checkpointer:
    def __init__(self, run_dir: str, trackables: Dict[str, Any], *, keep: int, log: Callable[[str], None] = print):
        self.run_dir, self.trackables, self.keep, self.log = run_dir, trackables, keep, log
        self.last_checkpoint: Optional[str] = None

    def remove_stale_temporaries(self) -> List[str]:
        """Half-written checkpoint directories of killed processes (readers ignore them anyway)."""
        return checkpoints.remove_stale_temporaries(self.run_dir)

    def save(self, frames: int, state: Dict[str, Any], replay=None) -> str:
        """Writes ckpt-<frames> atomically (with replay.save(dir) inside when a replay is given)."""
        writer = None if replay is None else lambda directory: replay.save(checkpoint_replay_dir(directory))
        self.last_checkpoint = checkpoints.save(self.run_dir, frames, self.trackables, state, self.keep, writer)
        return self.last_checkpoint

    def save_best(self, frames: int, state: Dict[str, Any]) -> str:
        """checkpoints/best: the variables now (without the replay), for the best evaluation so far."""
        return checkpoints.save_best(self.run_dir, frames, self.trackables, state)

    def restore_newest(self, restore_rest: Callable[[str, Dict[str, Any]], None]) -> Optional[Tuple[str, Dict]]:
        """Variables from the newest good checkpoint, then restore_rest(path, state) (counters, replay,
        extra state), which raises checkpoints.CheckpointError for damage: the previous checkpoint is
        then tried. Returns (path, state), or None for a run without checkpoints."""
        def attempt(path: str) -> Dict[str, Any]:
            state = checkpoints.restore(path, self.trackables)
            restore_rest(path, state)
            return state

        state, path = checkpoints.restore_newest_good(self.run_dir, attempt, log=self.log)
        if path is None:
            return None
        self.last_checkpoint = path
        return path, state
