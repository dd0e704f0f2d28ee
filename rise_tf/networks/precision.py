"""The Keras dtype policy for a block of layer construction.

Keras layers take the global dtype policy when they are made, so mixed precision is set only around
building the learner's networks (`rise_tf.builder.make_agent`) and restored after, leaving the
rest of the process (evaluation, export, tests) in float32. The frozen encoder ϑ is always float32:
it is a fixed function whose embeddings must equal the exported model's.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import tensorflow as tf


@contextlib.contextmanager
def keras_policy(policy: Optional[str]):
    """Layers made inside the block use `policy` ('mixed_float16', 'float32'); None changes nothing."""
    previous = tf.keras.mixed_precision.global_policy()
    if policy:
        tf.keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
