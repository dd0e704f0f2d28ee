"""Segments as sequences of stored rows, and the learner's inputs built from them in TensorFlow (issue 20).

A segment of m steps starting at row t is trained from the rows t-R+1 .. t+m-1+n of its lane
(R = max(k, frame stack): the prefix every window at t reads; n: the last bootstrap). This *record*
has T = R-1+m+n rows, each the fields of a TF-Agents `Trajectory` step as the collector wrote it
(ring.py): frame o_u, its embedding (RISE; `policy_info["embedding"]`), a_u, r_{u+1}, d_{u+1} and
the step type. So a TF-Agents replay buffer's `as_dataset(num_steps=T)` gives records too
(`from_trajectory`), and the in-process and Reverb samplers produce the same thing.

`segment_inputs` builds, in the graph, the inputs at the m+n positions t .. t+m-1+n (each exactly
what the actor read at that step: frame stack and k-embedding window, zeros and mask before its
episode's first row), and for each of the m trained positions its action, n-step return, bootstrap
discount and the index of its bootstrap position. The history before the segment is read from the
stored embeddings: no CNN pass for it (R2D2's burn-in runs the CNN on every burn-in frame).

Two step types beyond TF-Agents' FIRST/MID/LAST mark rows that are not a step of the record's lane:
    PAD      a row before a writer's first row (Reverb) or before the lane's first row: the episode
             starts after it, as if the next row were a FIRST.
    MISSING  a row the buffer no longer (overwritten) or not yet holds.
A position is trained when it is a step (not LAST, PAD or MISSING) and no row its inputs or targets
read is MISSING: exactly the in-process replay's "sampleable with an intact window" (parity tested).
"""
from __future__ import annotations

from typing import Dict

import tensorflow as tf

from rise_tf.replay.layout import FIRST, LAST
from rise_tf.replay.segments import MISSING, PAD, SequenceShape

def record_spec(shape: SequenceShape) -> Dict[str, tf.TensorSpec]:
    """One record (no batch axis): every field over its T rows."""
    layout, length = shape.layout, shape.record_length
    spec = {
        "frame": tf.TensorSpec([length, layout.frame_size, layout.frame_size], tf.uint8, "frame"),
        "action": tf.TensorSpec([length], tf.int32, "action"),
        "reward": tf.TensorSpec([length], tf.float32, "reward"),
        "discount": tf.TensorSpec([length], tf.float32, "discount"),
        "step_type": tf.TensorSpec([length], tf.int32, "step_type"),
    }
    if "embedding_window" in shape.input_keys:
        spec["embedding"] = tf.TensorSpec([length, layout.embedding_size], tf.float32, "embedding")
    return spec


def from_trajectory(trajectory, shape: SequenceShape) -> Dict[str, tf.Tensor]:
    """A TF-Agents `Trajectory` [B, T] (observation = one frame per step, policy_info["embedding"] for
    RISE) as a record. Its T must be the shape's record length."""
    record = {"frame": trajectory.observation, "action": trajectory.action, "reward": trajectory.reward,
              "discount": trajectory.discount, "step_type": trajectory.step_type}
    if "embedding_window" in shape.input_keys:
        info = trajectory.policy_info
        if not isinstance(info, dict) or "embedding" not in info:
            raise ValueError("a RISE trajectory carries each step's frozen embedding in policy_info['embedding'] "
                             "(what agent.collect_policy emits); this one has none")
        record["embedding"] = info["embedding"]
    return cast_record(record, shape)


def cast_record(record: Dict[str, tf.Tensor], shape: SequenceShape) -> Dict[str, tf.Tensor]:
    """The record in the dtypes of `record_spec`, after checking its length."""
    spec = record_spec(shape)
    length = record["step_type"].shape[1]
    if length is not None and length != shape.record_length:
        raise ValueError(f"a segment of {shape.segment_length} steps is trained from {shape.record_length} rows "
                         f"(R-1 = {shape.reach - 1} before it, n = {shape.layout.n_step} after it); got {length}: "
                         f"sample num_steps={shape.record_length}")
    return {key: tf.cast(record[key], spec[key].dtype) for key in spec}


def segment_inputs(record: Dict[str, tf.Tensor], shape: SequenceShape) -> Dict[str, object]:
    """Network inputs at the m+n positions and targets of the m trained ones, for records [B, T, ...]:
        observation        {input key: [B, m+n, ...]}
        action, n_step_return, bootstrap_discount   [B, m]
        bootstrap_index    [B, m] int32: the position (0 .. m+n-1) each target bootstraps from
        trainable          [B, m] bool
    The arithmetic is batches.assemble's (float64 returns, cast to float32), per position."""
    layout, m, n = shape.layout, shape.segment_length, shape.layout.n_step
    length, first = shape.record_length, shape.reach - 1  # `first`: the segment's first row in the record
    rows = tf.range(length)
    positions = first + tf.range(m + n)  # [P] record rows of the positions
    step_types = tf.cast(record["step_type"], tf.int32)  # [B, T]
    missing = tf.equal(step_types, MISSING)

    # The episode's first row at or before each position: the latest FIRST, or the row after a PAD.
    marks = tf.where(tf.equal(step_types, FIRST), rows, tf.where(tf.equal(step_types, PAD), rows + 1, -1))  # [B, T]
    at_or_before = rows[None, :] <= positions[:, None]  # [P, T]
    episode_start = tf.reduce_max(tf.where(at_or_before[None], marks[:, None, :], -1), axis=-1)  # [B, P]

    # Steps to the first LAST among the next n rows (m_i in 1..n), for each trained position.
    ahead = positions[:m, None] + tf.range(1, n + 1)[None, :]  # [m, n]
    is_last = tf.equal(tf.gather(step_types, ahead, axis=1), LAST)  # [B, m, n]
    steps = tf.where(tf.reduce_any(is_last, axis=-1),
                     tf.argmax(tf.cast(is_last, tf.int32), axis=-1, output_type=tf.int32) + 1, n)  # [B, m]
    taken = positions[:m, None] + tf.range(n)[None, :]  # rows t_i .. t_i+n-1  [m, n]
    rewards = tf.cast(tf.gather(record["reward"], taken, axis=1), tf.float64)  # [B, m, n]
    if layout.reward_clip > 0:
        rewards = tf.clip_by_value(rewards, -layout.reward_clip, layout.reward_clip)
    discounts = tf.cast(tf.gather(record["discount"], taken, axis=1), tf.float64)
    returns = tf.zeros_like(rewards[..., 0])
    running = tf.ones_like(rewards[..., 0])  # γ^i ∏_{j<i} d_j
    for i in range(n):  # the loop of targets.n_step_targets
        inside = i < steps
        returns += tf.where(inside, running * rewards[..., i], 0.0)
        running = tf.where(inside, running * layout.gamma * discounts[..., i], running)
    bootstrap_index = tf.range(m)[None, :] + steps  # [B, m]

    # Trained: a step whose inputs (from its episode start or R rows back) up to its bootstrap row are all held.
    own_type = step_types[:, first:first + m]  # [B, m]
    is_step = (own_type != LAST) & (own_type != PAD) & (own_type != MISSING)
    oldest = tf.maximum(positions[None, :m] - shape.reach + 1, episode_start[:, :m])  # [B, m]
    newest = positions[None, :m] + steps  # [B, m]
    read = (rows[None, None, :] >= oldest[..., None]) & (rows[None, None, :] <= newest[..., None])  # [B, m, T]
    trainable = is_step & ~tf.reduce_any(read & missing[:, None, :], axis=-1)

    return {
        "observation": _inputs_at(record, shape, positions, episode_start),
        "action": tf.cast(record["action"][:, first:first + m], tf.int32),
        "n_step_return": tf.cast(returns, tf.float32),
        "bootstrap_discount": tf.cast(running, tf.float32),
        "bootstrap_index": bootstrap_index,
        "trainable": trainable,
    }


def _inputs_at(record, shape: SequenceShape, positions, episode_start) -> Dict[str, tf.Tensor]:
    """Network inputs ending at each of `positions` [P]; rows before a position's episode start read as zeros."""
    layout, keys = shape.layout, shape.input_keys
    out = {}

    def window(length):
        rows = positions[:, None] - tf.range(length - 1, -1, -1)[None, :]  # [P, length], oldest first
        return rows, rows[None] >= episode_start[..., None]  # valid: [B, P, length]

    if "frame_stack" in keys:
        rows, valid = window(layout.frame_stack)
        stack = tf.gather(record["frame"], rows, axis=1) * tf.cast(valid, tf.uint8)[..., None, None]  # [B, P, S, H, W]
        out["frame_stack"] = tf.transpose(stack, [0, 1, 3, 4, 2])  # [B, P, H, W, S]
    if "embedding_window" in keys or "frame_window" in keys:
        rows, valid = window(layout.window_length)
        out["window_mask"] = tf.cast(valid, tf.float32)  # [B, P, k]
        if "embedding_window" in keys:
            embedded = tf.cast(tf.gather(record["embedding"], rows, axis=1), tf.float32)
            out["embedding_window"] = embedded * tf.cast(valid, tf.float32)[..., None]  # [B, P, k, E]
        if "frame_window" in keys:
            out["frame_window"] = tf.gather(record["frame"], rows, axis=1) * tf.cast(valid, tf.uint8)[..., None, None]
    return out
