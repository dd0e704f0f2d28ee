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

from rise_tf.replay import sequences
from rise_tf.replay.layout import ReplayLayout
# reach: rows an item holds before and including its sampled step t. Writers pad with PAD rows
# (segments.py) before their first real row; windows never reach past them.
from rise_tf.replay.segments import SequenceShape, reach


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
    """The learner's sample for one item (no batch axis): what batches.assemble gives for one row. An
    item of a single step is the record of a segment of one step (sequences.py builds its inputs)."""
    shape = SequenceShape(layout, tuple(input_keys), 1)
    record = sequences.cast_record({key: value[None] for key, value in item.items()}, shape)
    inputs = sequences.segment_inputs(record, shape)
    at = lambda index: {key: value[0, index] for key, value in inputs["observation"].items()}  # noqa: E731
    return {"observation": at(0), "action": inputs["action"][0, 0], "n_step_return": inputs["n_step_return"][0, 0],
            "bootstrap_discount": inputs["bootstrap_discount"][0, 0],
            "next_observation": at(inputs["bootstrap_index"][0, 0])}
