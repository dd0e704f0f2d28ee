"""Segments: m consecutive agent steps of one lane, sampled together (issue 20). NumPy only: the
records a segment is trained from, their shape, and the priority rule; sequences.py builds the
learner's inputs from a record in TensorFlow.

RISE stores every step's frozen embedding, so the history before a segment costs nothing to read: each
position's inputs are exactly what the actor read there (its frame stack and its k-embedding window,
zeros and mask before its episode's first step), built from the record's rows as for one step.
Position i of a segment started at row t is row t + i. A position is trained when it is a sampleable
step (its bootstrap row is stored, it is not an episode's LAST row) whose inputs were not overwritten;
the others are masked (sequences.py reads this from the record's step types). A segment may cross an episode end: the LAST row is masked, and the next
episode's rows are trained with windows that start at their own episode's first step, exactly as the
actor saw them.

Priority (R2D2, Kapturowski et al. 2019): a segment's is η·max + (1−η)·mean of its valid positions'
|TD errors|, written to the segment's start step; segment starts are drawn in proportion to it.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from rise_tf.replay.layout import ReplayLayout
from rise_tf.replay.ring import LaneRings

R2D2_ETA = 0.9  # R2D2's mix of the max and the mean error in a sequence's priority

# Step types of record rows that are not a step of the lane (sequences.py says how they are read).
PAD = 3
MISSING = 4


@dataclasses.dataclass(frozen=True)
class SequenceShape:
    """What building a segment's inputs needs to know: the replay layout's shapes and constants,
    the network's inputs and the segment length m."""

    layout: ReplayLayout
    input_keys: tuple
    segment_length: int

    @property
    def reach(self) -> int:
        return reach(self.layout)

    @property
    def record_length(self) -> int:
        """T = R-1 + m + n rows per record."""
        return self.reach - 1 + self.segment_length + self.layout.n_step

    @property
    def positions(self) -> int:
        """m + n: the trained positions and the bootstrap positions after them."""
        return self.segment_length + self.layout.n_step


def reach(layout: ReplayLayout) -> int:
    """Rows the inputs at one step read, itself included: max(k, frame stack)."""
    return max(layout.window_length, layout.frame_stack)


def segment_priority(errors: np.ndarray, valid: np.ndarray, eta: float) -> np.ndarray:
    """[B] η·max + (1−η)·mean over each segment's valid positions of errors [B, m]; 0 for a segment
    with no valid position."""
    errors = np.abs(np.asarray(errors, np.float64))
    valid = np.asarray(valid, bool)
    count = valid.sum(axis=1)
    largest = np.where(valid, errors, 0.0).max(axis=1)
    mean = np.where(valid, errors, 0.0).sum(axis=1) / np.maximum(count, 1)
    return np.where(count > 0, eta * largest + (1.0 - eta) * mean, 0.0)


def records(rings: LaneRings, lanes: np.ndarray, starts: np.ndarray, shape: SequenceShape) -> dict:
    """Records [B, T, ...] of segments starting at rows `starts` of `lanes` (sequences.py's format):
    rows before the lane's first are PAD, rows the buffer does not hold (overwritten or not yet
    written) MISSING, with zeros in their fields."""
    cap = rings.layout.lane_capacity
    rows = starts[:, None] + np.arange(-(shape.reach - 1), shape.segment_length + shape.layout.n_step)[None, :]
    lanes_2d = np.broadcast_to(lanes[:, None], rows.shape)
    written = rings.rows_written[lanes_2d]
    held = (rows >= np.maximum(written - cap, 0)) & (rows < written)
    slots = np.where(held, rows, 0) % cap
    step_types = np.where(held, rings.step_types[lanes_2d, slots], np.where(rows < 0, PAD, MISSING))

    def read(array, dtype):
        values = array[lanes_2d, slots].astype(dtype)
        return values * held.reshape(held.shape + (1,) * (values.ndim - 2)).astype(dtype)

    record = {"frame": read(rings.frames, np.uint8), "action": read(rings.actions, np.int32),
              "reward": read(rings.rewards, np.float32), "discount": read(rings.discounts, np.float32),
              "step_type": step_types.astype(np.int32)}
    if "embedding_window" in shape.input_keys:
        record["embedding"] = read(rings.embeddings, np.float32)
    return record
