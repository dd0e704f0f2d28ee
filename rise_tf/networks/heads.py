"""Q-value heads ω: linear and dueling (Wang et al. 2016). Distributional heads plug in here later."""
from __future__ import annotations

import tensorflow as tf

HEADS = ("linear", "dueling")


class LinearHead(tf.keras.layers.Layer):
    def __init__(self, num_actions: int, name: str = "linear_head"):
        super().__init__(name=name)
        self.q = tf.keras.layers.Dense(num_actions, name="q")

    def call(self, features):  # [B, F] -> [B, A]
        return self.q(features)


class DuelingHead(tf.keras.layers.Layer):
    """Q = V + A - mean(A): a value stream and an advantage stream over the same features."""

    def __init__(self, num_actions: int, name: str = "dueling_head"):
        super().__init__(name=name)
        self.value = tf.keras.layers.Dense(1, name="value")
        self.advantage = tf.keras.layers.Dense(num_actions, name="advantage")

    def call(self, features):  # [B, F] -> [B, A]
        advantage = self.advantage(features)
        return self.value(features) + advantage - tf.reduce_mean(advantage, axis=-1, keepdims=True)


def make_head(name: str, num_actions: int) -> tf.keras.layers.Layer:
    if name == "linear":
        return LinearHead(num_actions)
    if name == "dueling":
        return DuelingHead(num_actions)
    raise ValueError(f"unknown head {name!r}; choose one of {HEADS}")
