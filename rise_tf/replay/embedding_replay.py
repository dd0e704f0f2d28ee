"""In-process replay of single frames and frozen embeddings, with uniform and prioritized sampling.

Storage is per step and per env lane: {84x84 uint8 frame, ϑ embedding (float16 by default), action,
raw reward, discount, step type}. Frames are stored once, never as stacks; the learner's inputs are
assembled at sampling time. The pieces, one job each:

    layout.py       the shape (ReplayLayout) and its checks
    ring.py         per-lane ring buffers and episode bookkeeping (which rows are sampleable)
    prioritized.py  which slots a batch draws (sum tree, importance weights, priority updates)
    batches.py      sampled (lane, row) pairs -> network inputs, n-step returns, bootstrap discounts
    targets.py      the n-step arithmetic, a pure function
    persistence.py  save / restore of the slots in use
    store.py        ReplayStore, the interface the trainer uses

Deliberate deviation from Schaul et al. (2016): a step whose window reaches into overwritten rows is
dropped at sampling time rather than kept with a shortened window (acting saw the whole window;
learning must too). Importance weights are normalised by the batch's largest (prioritized.py).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

from rise_tf.replay import batches, persistence, segments
from rise_tf.replay.layout import ReplayLayout
from rise_tf.replay.prioritized import PrioritizedSampler
from rise_tf.replay.ring import LaneRings
from rise_tf.replay.segments import SequenceShape
from rise_tf.replay.store import ReplayStore


class EmbeddingReplay(ReplayStore):
    """Ring buffers per lane plus one sum tree over every (lane, slot)."""

    def __init__(self, layout: ReplayLayout, input_keys: Sequence[str], *, seed: int):
        unknown = set(input_keys) - set(batches.INPUT_KEYS)
        if unknown:
            raise ValueError(f"replay cannot build network inputs {sorted(unknown)}")
        if "embedding_window" in input_keys and layout.embedding_size == 0:
            raise ValueError("the network reads embedding windows but embedding_size is 0")
        self.layout = layout
        self.input_keys = tuple(input_keys)
        self.sampler = PrioritizedSampler(layout.num_lanes * layout.lane_capacity, prioritized=layout.prioritized,
                                          priority_exponent=layout.priority_exponent, seed=seed)
        self.rings = LaneRings(layout, self._track)

    def _track(self, lanes: np.ndarray, slots: np.ndarray, sampleable: bool) -> None:
        self.sampler.track(lanes * self.layout.lane_capacity + slots, sampleable)

    @property
    def num_sampleable(self) -> int:
        return self.rings.num_sampleable

    @property
    def num_stored(self) -> int:
        return self.rings.num_stored

    def bytes_per_step(self) -> float:
        per_slot = self.rings.slot_nbytes() + self.sampler.tree.nodes.nbytes
        return per_slot / (self.layout.num_lanes * self.layout.lane_capacity)

    def add_batch(self, step_type, frame, embedding, action, reward, discount) -> None:
        self.rings.add(step_type, frame, embedding, action, reward, discount)

    def sample(self, batch_size: int, beta: float) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
        lanes, rows, weights = self._draw(batch_size, beta)
        return self.assemble(lanes, rows), self.key(lanes, rows), weights

    def _draw(self, batch_size: int, beta: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lanes, absolute rows, importance weights) of `batch_size` steps drawn by priority."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.num_sampleable == 0:
            raise RuntimeError("replay has no sampleable steps yet: collect more before learning "
                               "(raise the warm-up)")
        cap = self.layout.lane_capacity

        def check(leaves):
            lanes, slots = leaves // cap, leaves % cap
            stored = self.rings.sampleable[lanes, slots]
            good = stored & self.rings.window_intact(lanes, self.rings.absolute_rows(lanes, slots))
            # Steps whose window start was overwritten will never be valid again: dropped.
            return good, stored & ~good

        def drop(leaves):
            self.rings.set_sampleable(leaves // cap, leaves % cap, False)

        leaves = self.sampler.draw(batch_size, check, drop, lambda: self.num_sampleable > 0)
        lanes, slots = leaves // cap, leaves % cap
        rows = self.rings.absolute_rows(lanes, slots)
        return lanes, rows, self.sampler.importance_weights(leaves, self.num_sampleable, beta)

    def sample_segments(self, batch_size: int, shape: SequenceShape, beta: float
                        ) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """B segments of `shape.segment_length` consecutive steps, drawn by their start's priority, as
        records (replay/sequences.py): each segment's rows t-R+1 .. t+m-1+n, with rows before the
        lane's first as PAD and rows not held (overwritten, not yet written) as MISSING. Returns
        (records {field: [B, T, ...]}, start keys [B], importance weights [B])."""
        if shape.segment_length < 1:
            raise ValueError(f"a segment has at least 1 step, got {shape.segment_length}")
        lanes, starts, weights = self._draw(batch_size, beta)  # the starts, drawn by their priority
        return segments.records(self.rings, lanes, starts, shape), self.key(lanes, starts), weights

    def key(self, lanes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """A sampled step's key names its absolute row, not its slot: a batch sampled ahead (prefetch)
        can never write its priority onto a newer step that has taken the slot since."""
        return rows * self.layout.num_lanes + lanes

    def assemble(self, lanes: np.ndarray, rows: np.ndarray) -> Dict[str, np.ndarray]:
        return batches.assemble(self.rings, self.input_keys, lanes, rows)

    def update_priorities(self, keys: np.ndarray, errors: np.ndarray) -> None:
        keys = np.asarray(keys, np.int64)
        cap = self.layout.lane_capacity
        lanes, rows = keys % self.layout.num_lanes, keys // self.layout.num_lanes
        slots = rows % cap
        # The step must still be in its slot (not overwritten since it was sampled) and sampleable.
        still_valid = (self.rings.absolute_rows(lanes, slots) == rows) & self.rings.sampleable[lanes, slots]
        self.sampler.update(lanes * cap + slots, errors, still_valid)

    def save(self, directory: str) -> None:
        persistence.save(directory, self.rings, self.sampler, self.input_keys)

    def restore(self, directory: str) -> None:
        persistence.restore(directory, self.rings, self.sampler, self.input_keys)
