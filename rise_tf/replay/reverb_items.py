"""What a Reverb item holds, and the learner's inputs built from it in TensorFlow (issue 11).

Each env step is written to Reverb once, as one row of the columns in `step_spec` (the same fields as
a row of the in-process replay, ring.py: o_u and its embedding, a_u, r_{u+1}, d_{u+1}, the step type,
plus the writer's lane and absolute row). An item is the learner's view of one sampled step t: the
slice of rows t-R+1 .. t+n of its lane, R = max(k, frame stack), so that the windows at t and at the
bootstrap step t+m (m <= n) both lie inside it. Items reference the rows; Reverb stores each row
once, however many items share it.

`learner_inputs` is the TensorFlow twin of batches.assemble for one item: the same masking before
the episode's first step, the same n-step return and bootstrap discount (in float64, cast as numpy
does), so a Reverb batch equals the in-process replay's for the same steps (tests/test_reverb_replay.py).

With segments of m steps (issue 20) an item is the record of the segment that starts at t: rows
t-R+1 .. t+m-1+n (replay/sequences.py builds the learner's inputs from it, in the agent's update).

Deliberate difference from the in-process replay: an item is made when its last row (t+n, or
t+m-1+n for a segment) is written, also when the episode ended earlier (its rows past the episode's
end are never read). So the last steps of an episode become sampleable up to m-1+n-1 steps later
than in-process, and a writer that stops loses the items of its last m-1+n steps. TensorFlow-only;
no Reverb import here.
"""
from __future__ import annotations

from typing import Dict, Sequence

import tensorflow as tf

from rise_tf.replay.layout import FIRST, LAST, ReplayLayout
# PAD: the step type of the rows a writer puts before its first real row (after a start or a reconnect
# to the server): the windows of the rows after them never reach past them. reach: rows an item holds
# before and including its sampled step t.
from rise_tf.replay.segments import PAD, reach


def item_length(layout: ReplayLayout, segment_length: int = 1) -> int:
    """R + n rows for a single step; R-1 + m + n for a segment of m (its record)."""
    return reach(layout) - 1 + segment_length + layout.n_step


def step_spec(layout: ReplayLayout) -> Dict[str, tf.TensorSpec]:
    """One written row (no time axis)."""
    size = layout.frame_size
    spec = {
        "frame": tf.TensorSpec([size, size], tf.uint8),
        "action": tf.TensorSpec([], tf.int32),
        "reward": tf.TensorSpec([], tf.float32),
        "discount": tf.TensorSpec([], tf.float32),
        "step_type": tf.TensorSpec([], tf.uint8),
        "lane": tf.TensorSpec([], tf.int32),
        "row": tf.TensorSpec([], tf.int64),
    }
    if layout.embedding_size:
        spec["embedding"] = tf.TensorSpec([layout.embedding_size], tf.as_dtype(layout.embedding_dtype))
    return spec


def item_spec(layout: ReplayLayout, segment_length: int = 1) -> Dict[str, tf.TensorSpec]:
    """An item: every column over the item's rows (the Reverb table's signature)."""
    length = item_length(layout, segment_length)
    return {name: tf.TensorSpec([length, *spec.shape], spec.dtype) for name, spec in step_spec(layout).items()}


def learner_inputs(item: Dict[str, tf.Tensor], layout: ReplayLayout, input_keys: Sequence[str]) -> Dict[str, tf.Tensor]:
    """The learner's sample for one item (no batch axis): what batches.assemble gives for one row."""
    n, t = layout.n_step, reach(layout) - 1  # t: the sampled step's position in the item
    positions = tf.range(item_length(layout))
    step_types = tf.cast(item["step_type"], tf.int32)
    # The episode's first row at or before t (or the row after the writer's padding); -1 when the
    # episode began before the item.
    starts = tf.where((step_types == FIRST) & (positions <= t), positions, -1)
    after_padding = tf.where((step_types == PAD) & (positions <= t), positions + 1, -1)
    episode_start = tf.maximum(tf.reduce_max(starts), tf.reduce_max(after_padding))
    # m: steps to the first LAST among t+1 .. t+n, else n.
    is_last = tf.equal(step_types[t + 1:t + n + 1], LAST)
    m = tf.where(tf.reduce_any(is_last), tf.argmax(tf.cast(is_last, tf.int32), output_type=tf.int32) + 1, n)
    rewards = tf.cast(item["reward"][t:t + n], tf.float64)
    if layout.reward_clip > 0:
        rewards = tf.clip_by_value(rewards, -layout.reward_clip, layout.reward_clip)
    discounts = tf.cast(item["discount"][t:t + n], tf.float64)
    returns, running = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
    for i in range(n):  # the loop of targets.n_step_targets, one row
        inside = i < m
        returns += tf.where(inside, running * rewards[i], 0.0)
        running = tf.where(inside, running * layout.gamma * discounts[i], running)
    return {
        "observation": _inputs_at(item, layout, input_keys, t, episode_start),
        "action": item["action"][t],
        "n_step_return": tf.cast(returns, tf.float32),
        "bootstrap_discount": tf.cast(running, tf.float32),
        "next_observation": _inputs_at(item, layout, input_keys, t + m, episode_start),
    }


def _inputs_at(item, layout: ReplayLayout, input_keys, position, episode_start) -> Dict[str, tf.Tensor]:
    """Network inputs ending at `position`; rows before the episode start read as zeros."""
    out = {}

    def window(length):
        rows = position - tf.range(length - 1, -1, -1)  # oldest first
        return rows, rows >= episode_start

    if "frame_stack" in input_keys:
        rows, valid = window(layout.frame_stack)
        stack = tf.gather(item["frame"], rows) * tf.cast(valid, tf.uint8)[:, None, None]
        out["frame_stack"] = tf.transpose(stack, [1, 2, 0])  # [H, W, S]
    if "embedding_window" in input_keys or "frame_window" in input_keys:
        rows, valid = window(layout.window_length)
        out["window_mask"] = tf.cast(valid, tf.float32)
        if "embedding_window" in input_keys:
            embedded = tf.cast(tf.gather(item["embedding"], rows), tf.float32)
            out["embedding_window"] = embedded * tf.cast(valid, tf.float32)[:, None]
        if "frame_window" in input_keys:
            out["frame_window"] = tf.gather(item["frame"], rows) * tf.cast(valid, tf.uint8)[:, None, None]
    return out
