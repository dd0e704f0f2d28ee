"""Per-lane ring buffers of single steps, and the episode bookkeeping that decides which rows can be
sampled. No sampling and no batch assembly here.

Row u of a lane holds what the TF-Agents driver's Trajectory carries for time u: the observation
o_u, its embedding, the action a_u, and r_{u+1}, d_{u+1} (the reward and discount of the step it
led to). The LAST row of an episode keeps its frame as a bootstrap observation and is never sampled.
Rows are absolute (0, 1, 2, ... per lane); row u lives in slot u % lane_capacity.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from rise_tf.replay.layout import FIRST, LAST, ReplayLayout

# on_sampleable(lanes, slots, value): told whenever rows become sampleable or stop being so.
SampleableListener = Callable[[np.ndarray, np.ndarray, bool], None]


class LaneRings:
    # Per-slot arrays ([lanes, lane_capacity, ...]) and per-lane counters, as persisted.
    SLOT_ARRAYS = ("frames", "embeddings", "actions", "rewards", "discounts", "step_types", "episode_starts",
                   "sampleable")
    LANE_ARRAYS = ("rows_written", "current_episode_start")

    def __init__(self, layout: ReplayLayout, on_sampleable: SampleableListener):
        self.layout = layout
        self._on_sampleable = on_sampleable
        lanes, cap, size = layout.num_lanes, layout.lane_capacity, layout.frame_size
        self.frames = np.zeros((lanes, cap, size, size), np.uint8)
        self.embeddings = np.zeros((lanes, cap, layout.embedding_size), layout.embedding_dtype)
        self.actions = np.zeros((lanes, cap), np.int32)
        self.rewards = np.zeros((lanes, cap), np.float32)
        self.discounts = np.zeros((lanes, cap), np.float32)
        self.step_types = np.zeros((lanes, cap), np.uint8)
        self.episode_starts = np.zeros((lanes, cap), np.int64)  # absolute row of the episode's FIRST
        self.sampleable = np.zeros((lanes, cap), bool)
        self.rows_written = np.zeros(lanes, np.int64)  # absolute index of each lane's next row
        self.current_episode_start = np.zeros(lanes, np.int64)

    @property
    def num_sampleable(self) -> int:
        return int(self.sampleable.sum())

    @property
    def num_stored(self) -> int:
        return int(np.minimum(self.rows_written, self.layout.lane_capacity).sum())

    def slot_nbytes(self) -> int:
        """Bytes of all per-slot arrays."""
        return sum(getattr(self, name).nbytes for name in self.SLOT_ARRAYS)

    def slots_in_use(self) -> int:
        """Slots 0..used-1 of every lane hold data (lanes fill their ring from slot 0 in step)."""
        return int(min(self.rows_written.max(initial=0), self.layout.lane_capacity))

    def add(self, step_type, frame, embedding, action, reward, discount) -> None:
        cap = self.layout.lane_capacity
        step_type = np.asarray(step_type)
        lanes = np.arange(self.layout.num_lanes)
        rows = self.rows_written.copy()
        slots = rows % cap
        # The slot's previous occupant (row - cap) leaves the buffer.
        self.set_sampleable(lanes, slots, False)
        starts = (step_type == FIRST) | (rows == 0)
        self.current_episode_start = np.where(starts, rows, self.current_episode_start)
        self.frames[lanes, slots] = frame
        if self.layout.embedding_size:
            self.embeddings[lanes, slots] = embedding
        self.actions[lanes, slots] = action
        self.rewards[lanes, slots] = reward
        self.discounts[lanes, slots] = discount
        self.step_types[lanes, slots] = step_type
        self.episode_starts[lanes, slots] = self.current_episode_start
        self.rows_written += 1
        self._mark_newly_sampleable(rows, step_type == LAST)

    def _mark_newly_sampleable(self, new_rows: np.ndarray, is_last: np.ndarray) -> None:
        """Row t becomes sampleable once its bootstrap row exists: t + n written, or its episode
        ended at the row just written (then every earlier row of that episode within n steps)."""
        n, cap = self.layout.n_step, self.layout.lane_capacity
        lane_list, row_list = [], []
        for lane, (row, last) in enumerate(zip(new_rows, is_last)):
            candidates = range(row - n + 1, row) if last else ()
            for t in (row - n, *candidates):
                if t >= max(0, row + 1 - cap):
                    lane_list.append(lane)
                    row_list.append(t)
        if not row_list:
            return
        lanes, rows = np.array(lane_list), np.array(row_list)
        slots = rows % cap
        fresh = ~self.sampleable[lanes, slots] & (self.step_types[lanes, slots] != LAST)
        # Same episode as the new row, or the row ended its own episode already (then it was
        # marked then): a fresh row always has its bootstrap inside the written range here.
        self.set_sampleable(lanes[fresh], slots[fresh], True)

    def set_sampleable(self, lanes, slots, value: bool) -> None:
        if len(lanes) == 0:
            return
        self.sampleable[lanes, slots] = value
        self._on_sampleable(lanes, slots, value)

    def close_open_episodes(self) -> None:
        """Ends each lane's open episode at its last written row, as a truncation.

        After a restore the envs start new episodes, so the next row of every lane is a FIRST. Without
        this, the last n rows of an open episode would take n-step returns and bootstrap windows from
        the next episode. Marked LAST with its stored discount kept, the last row becomes the bootstrap
        of the rows before it, as any truncation is."""
        cap = self.layout.lane_capacity
        written = self.rows_written > 0
        last_rows = np.maximum(self.rows_written - 1, 0)
        last_slots = last_rows % cap
        lanes = np.arange(self.layout.num_lanes)
        open_episode = written & (self.step_types[lanes, last_slots] != LAST)
        if not open_episode.any():
            return
        self.set_sampleable(lanes[open_episode], last_slots[open_episode], False)  # a LAST row is never sampled
        self.step_types[lanes[open_episode], last_slots[open_episode]] = LAST
        self._mark_newly_sampleable(last_rows, open_episode)

    def absolute_rows(self, lanes: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Slot -> absolute row: the newest row of that lane that lives in that slot."""
        cap = self.layout.lane_capacity
        written = self.rows_written[lanes]
        return written - 1 - ((written - 1 - slots) % cap)

    def window_intact(self, lanes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The oldest row the inputs at `rows` read is still in the buffer (not overwritten)."""
        reach = max(self.layout.window_length, self.layout.frame_stack)
        slots = rows % self.layout.lane_capacity
        oldest_needed = np.maximum(rows - reach + 1, self.episode_starts[lanes, slots])
        oldest_kept = self.rows_written[lanes] - self.layout.lane_capacity
        return oldest_needed >= oldest_kept
