"""In-process replay of single frames and frozen embeddings, with uniform and prioritized sampling.

Storage is per step and per env lane: {84x84 uint8 frame, ϑ embedding (float16 by default),
action, raw reward, discount, step type}. Frames are stored once, never as stacks; the learner's
inputs are assembled at sampling time:

    for a sampled step t (lane l):  frame stack at t, embedding window ending at t (k steps, zeroed
    and masked before the episode's first step), the same at the bootstrap step b = t + m, the
    n-step return over m = min(n, steps to the episode's end) clipped rewards, and the bootstrap
    discount γ^m ∏ d (0 after a termination or a life loss, γ^m after a truncation).

Row u of a lane holds what the TF-Agents driver's Trajectory carries for time u: the observation
o_u, its embedding, the action a_u, and r_{u+1}, d_{u+1} (the reward and discount of the step it
led to). The LAST row of an episode keeps its frame as a bootstrap observation and is never sampled.

Deliberate deviations from Schaul et al. (2016): importance weights are normalised by the largest
weight in the batch, and a step whose window reaches into overwritten rows is dropped at sampling
time rather than kept with a shortened window (acting saw the whole window; learning must too).
"""
from __future__ import annotations

import abc
import dataclasses
import json
import os
from typing import Dict, Sequence, Tuple

import numpy as np

from rise_tf.replay.sum_tree import SumTree

FIRST, MID, LAST = 0, 1, 2  # TF-Agents StepType values
FORMAT_VERSION = 3  # 3: only the slots in use, leaf priorities (2: the whole buffer and tree)


def n_step_targets(rewards: np.ndarray, discounts: np.ndarray, num_steps: np.ndarray,
                   gamma: float) -> Tuple[np.ndarray, np.ndarray]:
    """n-step return and bootstrap discount, per row.

    Args:
      rewards: [B, n] r_{t+1..t+n} (already clipped); discounts: [B, n] d_{t+1..t+n};
      num_steps: [B] m, how many of the n steps lie inside the episode (1..n); gamma: γ.
    Returns:
      returns [B] = Σ_{i<m} γ^i (∏_{j<i} d_j) r_i and bootstrap discounts [B] = γ^m ∏_{j<m} d_j.
    """
    batch, n = rewards.shape
    returns = np.zeros(batch, np.float64)
    running = np.ones(batch, np.float64)  # γ^i ∏_{j<i} d_j
    for i in range(n):
        inside = i < num_steps
        returns += np.where(inside, running * rewards[:, i], 0.0)
        running = np.where(inside, running * gamma * discounts[:, i], running)
    return returns.astype(np.float32), running.astype(np.float32)


class ReplayStore(abc.ABC):
    """What the trainer needs from replay. A Reverb-backed table can implement the same methods."""

    @abc.abstractmethod
    def add_batch(self, step_type, frame, embedding, action, reward, discount) -> None:
        """Appends one step for every lane; arrays have a leading [num_lanes] axis."""

    @abc.abstractmethod
    def sample(self, batch_size: int, beta: float = 0.4) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Returns (batch, keys, importance_weights)."""

    @abc.abstractmethod
    def update_priorities(self, keys: np.ndarray, errors: np.ndarray) -> None:
        """New priorities (|error| + ε)^α for sampled keys; errors are per-sample |TD| (or BTR's
        quantile error)."""

    @property
    @abc.abstractmethod
    def num_sampleable(self) -> int:
        ...


def min_lane_capacity(*, window_length: int, frame_stack: int, n_step: int) -> int:
    """Steps each lane must hold: the longest input window, the n-step lookahead, and two rows of
    slack (the row being written and the episode's LAST row). The config checks by this too."""
    return max(window_length, frame_stack) + n_step + 2


PRIORITY_EPSILON = 1e-6  # added to |error| before the exponent, so no stored step has priority 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplayLayout:
    """Shapes and learning constants the sampler needs; saved next to the buffer's contents.
    No defaults: the run config is their one source (the builder passes every field)."""

    num_lanes: int
    capacity: int  # total steps over all lanes
    frame_size: int
    embedding_size: int  # 0 when the network has no frozen encoder
    embedding_dtype: str
    frame_stack: int
    window_length: int
    n_step: int
    gamma: float
    reward_clip: float  # rewards clipped to [-c, c] in the targets; 0 disables clipping
    prioritized: bool
    priority_exponent: float  # α

    def __post_init__(self):
        need = min_lane_capacity(window_length=self.window_length, frame_stack=self.frame_stack, n_step=self.n_step)
        checks = [
            (self.num_lanes >= 1, f"num_lanes must be >= 1, got {self.num_lanes}"),
            (self.capacity >= self.num_lanes * need,
             f"capacity {self.capacity} is too small for {self.num_lanes} lanes: each lane needs at least "
             f"max(window, frame stack) + n_step + 2 = {need} steps"),
            (self.embedding_size >= 0, f"embedding_size must be >= 0, got {self.embedding_size}"),
            (self.embedding_dtype in ("float16", "float32"),
             f"embedding_dtype must be float16 or float32, got {self.embedding_dtype!r}"),
            (self.frame_stack >= 1, f"frame_stack must be >= 1, got {self.frame_stack}"),
            (self.window_length >= 1, f"window_length (k) must be >= 1, got {self.window_length}"),
            (self.n_step >= 1, f"n_step must be >= 1, got {self.n_step}"),
            (0.0 < self.gamma <= 1.0, f"gamma must be in (0, 1], got {self.gamma}"),
            (self.reward_clip >= 0, f"reward_clip must be >= 0, got {self.reward_clip}"),
            (self.priority_exponent >= 0, f"priority_exponent must be >= 0, got {self.priority_exponent}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def lane_capacity(self) -> int:
        return self.capacity // self.num_lanes

    def estimated_bytes(self) -> int:
        """Memory the buffer allocates for this layout (frames, embeddings, scalars, sum tree)."""
        slots = self.num_lanes * self.lane_capacity
        per_slot = (self.frame_size ** 2 + self.embedding_size * np.dtype(self.embedding_dtype).itemsize
                    + 4 + 4 + 4 + 1 + 8 + 1)  # action, reward, discount, step type, episode start, sampleable
        tree_leaves = 1 << int(np.ceil(np.log2(max(slots, 2))))
        return slots * per_slot + 2 * tree_leaves * 8


class EmbeddingReplay(ReplayStore):
    """Ring buffers per lane plus one sum tree over every (lane, slot)."""

    def __init__(self, layout: ReplayLayout, input_keys: Sequence[str], *, seed: int):
        unknown = set(input_keys) - {"frame_stack", "embedding_window", "frame_window", "window_mask"}
        if unknown:
            raise ValueError(f"replay cannot build network inputs {sorted(unknown)}")
        if "embedding_window" in input_keys and layout.embedding_size == 0:
            raise ValueError("the network reads embedding windows but embedding_size is 0")
        self.layout = layout
        self.input_keys = tuple(input_keys)
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
        self.tree = SumTree(lanes * cap)
        self.max_priority = 1.0
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ writing

    @property
    def num_sampleable(self) -> int:
        return int(self.sampleable.sum())

    @property
    def num_stored(self) -> int:
        return int(np.minimum(self.rows_written, self.layout.lane_capacity).sum())

    def bytes_per_step(self) -> float:
        arrays = (self.frames, self.embeddings, self.actions, self.rewards, self.discounts,
                  self.step_types, self.episode_starts, self.sampleable)
        per_slot = sum(a.nbytes for a in arrays) + self.tree.nodes.nbytes
        return per_slot / (self.layout.num_lanes * self.layout.lane_capacity)

    def add_batch(self, step_type, frame, embedding, action, reward, discount) -> None:
        cap = self.layout.lane_capacity
        step_type = np.asarray(step_type)
        lanes = np.arange(self.layout.num_lanes)
        rows = self.rows_written.copy()
        slots = rows % cap
        # The slot's previous occupant (row - cap) leaves the buffer.
        self._set_sampleable(lanes, slots, False)
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
        self._set_sampleable(lanes[fresh], slots[fresh], True)

    def _set_sampleable(self, lanes, slots, value: bool) -> None:
        if len(lanes) == 0:
            return
        self.sampleable[lanes, slots] = value
        leaves = lanes * self.layout.lane_capacity + slots
        priority = (self.max_priority if self.layout.prioritized else 1.0) if value else 0.0
        self.tree.set(leaves, np.full(len(leaves), priority))

    # ------------------------------------------------------------------ sampling

    def _window_intact(self, lanes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The oldest row the inputs at `rows` read is still in the buffer (not overwritten)."""
        reach = max(self.layout.window_length, self.layout.frame_stack)
        slots = rows % self.layout.lane_capacity
        oldest_needed = np.maximum(rows - reach + 1, self.episode_starts[lanes, slots])
        oldest_kept = self.rows_written[lanes] - self.layout.lane_capacity
        return oldest_needed >= oldest_kept

    def sample(self, batch_size: int, beta: float = 0.4):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.num_sampleable == 0:
            raise RuntimeError("replay has no sampleable steps yet: collect more before learning "
                               "(raise the warm-up)")
        cap = self.layout.lane_capacity
        leaves = np.zeros(batch_size, np.int64)
        pending = np.arange(batch_size)
        for _ in range(20):
            total = self.tree.total
            # Stratified: one uniform draw inside each of batch_size equal slices of the mass.
            bounds = (pending + self.rng.random(len(pending))) * (total / batch_size)
            found = self.tree.find(np.minimum(bounds, np.nextafter(total, 0)))
            lanes, slots = found // cap, found % cap
            rows = self._absolute_rows(lanes, slots)
            good = self.sampleable[lanes, slots] & self._window_intact(lanes, rows)
            # Steps whose window start was overwritten will never be valid again: drop them.
            stale = self.sampleable[lanes, slots] & ~good
            self._set_sampleable(lanes[stale], slots[stale], False)
            leaves[pending[good]] = found[good]
            pending = pending[~good]
            if len(pending) == 0:
                break
            if self.num_sampleable == 0:
                raise RuntimeError("replay has no sampleable steps left")
        else:
            raise RuntimeError("could not draw a valid batch from replay after 20 tries")
        lanes, slots = leaves // cap, leaves % cap
        rows = self._absolute_rows(lanes, slots)
        batch = self._assemble(lanes, rows)
        if self.layout.prioritized:
            probabilities = self.tree.get(leaves) / self.tree.total
            weights = (self.num_sampleable * probabilities) ** (-beta)
            weights = (weights / weights.max()).astype(np.float32)
        else:
            weights = np.ones(batch_size, np.float32)
        return batch, leaves, weights

    def _absolute_rows(self, lanes: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Slot -> absolute row: the newest row of that lane that lives in that slot."""
        cap = self.layout.lane_capacity
        written = self.rows_written[lanes]
        return written - 1 - ((written - 1 - slots) % cap)

    def _assemble(self, lanes: np.ndarray, rows: np.ndarray) -> Dict[str, np.ndarray]:
        layout, cap = self.layout, self.layout.lane_capacity
        n = layout.n_step
        episode_start = self.episode_starts[lanes, rows % cap]  # [B]
        # Walk forward up to n steps, stopping after the episode's LAST row.
        offsets = np.arange(1, n + 1)
        ahead = rows[:, None] + offsets  # [B, n]
        ahead_clipped = np.minimum(ahead, self.rows_written[lanes, None] - 1)
        is_last = self.step_types[lanes[:, None], ahead_clipped % cap] == LAST  # [B, n]
        first_last = np.where(is_last.any(axis=1), is_last.argmax(axis=1) + 1, n)  # m in 1..n
        steps = rows[:, None] + np.arange(n)  # rows t .. t+n-1  [B, n]
        step_slots = np.minimum(steps, self.rows_written[lanes, None] - 1) % cap
        rewards = self.rewards[lanes[:, None], step_slots]
        if layout.reward_clip > 0:
            rewards = np.clip(rewards, -layout.reward_clip, layout.reward_clip)
        discounts = self.discounts[lanes[:, None], step_slots]
        returns, bootstrap_discount = n_step_targets(rewards, discounts, first_last, layout.gamma)
        bootstrap_rows = rows + first_last
        return {
            "observation": self._inputs_at(lanes, rows, episode_start),
            "action": self.actions[lanes, rows % cap],
            "n_step_return": returns,
            "bootstrap_discount": bootstrap_discount,
            "next_observation": self._inputs_at(lanes, bootstrap_rows, episode_start),
        }

    def _inputs_at(self, lanes, rows, episode_start) -> Dict[str, np.ndarray]:
        """Network inputs ending at `rows`; rows before the episode start read as zeros."""
        layout, cap = self.layout, self.layout.lane_capacity
        out = {}

        def window(length):
            past = rows[:, None] - np.arange(length - 1, -1, -1)  # [B, length], oldest first
            valid = past >= episode_start[:, None]
            return past % cap, valid

        if "frame_stack" in self.input_keys:
            slots, valid = window(layout.frame_stack)
            stack = self.frames[lanes[:, None], slots] * valid[:, :, None, None].astype(np.uint8)
            out["frame_stack"] = np.ascontiguousarray(stack.transpose(0, 2, 3, 1))  # [B, H, W, S]
        if "embedding_window" in self.input_keys or "frame_window" in self.input_keys:
            slots, valid = window(layout.window_length)
            out["window_mask"] = valid.astype(np.float32)  # [B, k]
            if "embedding_window" in self.input_keys:
                embedded = self.embeddings[lanes[:, None], slots].astype(np.float32)
                out["embedding_window"] = embedded * valid[:, :, None]  # [B, k, E]
            if "frame_window" in self.input_keys:
                out["frame_window"] = self.frames[lanes[:, None], slots] * valid[:, :, None, None].astype(np.uint8)
        return out

    def update_priorities(self, keys: np.ndarray, errors: np.ndarray) -> None:
        if not self.layout.prioritized:
            return
        errors = np.abs(np.asarray(errors, np.float64))
        if not np.all(np.isfinite(errors)):
            raise ValueError("sample errors contain NaN or inf; refusing to write them as priorities")
        priorities = (errors + PRIORITY_EPSILON) ** self.layout.priority_exponent
        keys = np.asarray(keys, np.int64)
        cap = self.layout.lane_capacity
        still_valid = self.sampleable[keys // cap, keys % cap]  # a key may have been overwritten since
        self.tree.set(keys[still_valid], priorities[still_valid])
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))

    # ------------------------------------------------------------------ persistence

    # Per-slot arrays ([lanes, capacity, ...]) and per-lane counters.
    _SLOT_ARRAYS = ("frames", "embeddings", "actions", "rewards", "discounts", "step_types", "episode_starts",
                    "sampleable")
    _LANE_ARRAYS = ("rows_written", "current_episode_start")

    def _slots_in_use(self) -> int:
        """Slots 0..used-1 of every lane hold data (lanes fill their ring from slot 0 in step)."""
        return int(min(self.rows_written.max(initial=0), self.layout.lane_capacity))

    def save(self, directory: str) -> None:
        """Writes the slots in use into `directory` (the caller makes the directory atomic): a short run's
        replay takes megabytes, not the whole preallocated buffer."""
        os.makedirs(directory, exist_ok=True)
        used = self._slots_in_use()
        leaves = (np.arange(self.layout.num_lanes)[:, None] * self.layout.lane_capacity + np.arange(used)).ravel()
        np.savez(os.path.join(directory, "replay.npz"), priorities=self.tree.get(leaves),
                 **{name: getattr(self, name)[:, :used] for name in self._SLOT_ARRAYS},
                 **{name: getattr(self, name) for name in self._LANE_ARRAYS})
        meta = {"format_version": FORMAT_VERSION, "layout": dataclasses.asdict(self.layout),
                "input_keys": list(self.input_keys), "max_priority": self.max_priority, "slots_in_use": used,
                "rng": self.rng.bit_generator.state}
        with open(os.path.join(directory, "replay.json"), "w") as f:
            json.dump(meta, f)

    def restore(self, directory: str) -> None:
        with open(os.path.join(directory, "replay.json")) as f:
            meta = json.load(f)
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"replay in {directory} has format {meta.get('format_version')}, "
                             f"this rise-tf reads {FORMAT_VERSION}")
        if meta["layout"] != dataclasses.asdict(self.layout) or meta["input_keys"] != list(self.input_keys):
            raise ValueError(f"replay in {directory} was written with another layout; resume with the "
                             f"run's own config or start without --restore-replay")
        used = meta["slots_in_use"]
        with np.load(os.path.join(directory, "replay.npz")) as data:
            for name in self._SLOT_ARRAYS:
                getattr(self, name)[:, :used] = data[name]
            for name in self._LANE_ARRAYS:
                getattr(self, name)[...] = data[name]
            leaves = (np.arange(self.layout.num_lanes)[:, None] * self.layout.lane_capacity
                      + np.arange(used)).ravel()
            if used:
                self.tree.set(leaves, data["priorities"])  # internal sums rebuilt from the leaves
        self.max_priority = meta["max_priority"]
        self.rng.bit_generator.state = meta["rng"]
        self._close_open_episodes()

    def _close_open_episodes(self) -> None:
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
        self._set_sampleable(lanes[open_episode], last_slots[open_episode], False)  # a LAST row is never sampled
        self.step_types[lanes[open_episode], last_slots[open_episode]] = LAST
        self._mark_newly_sampleable(last_rows, open_episode)
