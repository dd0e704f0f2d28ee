"""The recurrent core ψ: an LSTM (or GRU) over a fixed window of k steps with a validity mask.

Windows are left-padded: steps before the episode's first frame hold zeros and mask 0. The cell is
unrolled over the k steps (k is small, 16 by default) and a masked step leaves the state unchanged,
so the output equals running the cell over the valid suffix only, from a zero state. Unrolling with
static shapes also keeps the exported ONNX graph free of loop and mask-specific ops.
"""
from __future__ import annotations

import tensorflow as tf

from rise_tf.networks.choices import CORES


class MaskedRecurrentCore(tf.keras.layers.Layer):
    def __init__(self, *, units: int, core: str, name: str = "recurrent_core"):
        super().__init__(name=name)
        if units < 1:
            raise ValueError(f"core units must be >= 1, got {units}")
        if core == "lstm":
            self.cell = tf.keras.layers.LSTMCell(units, name="lstm_cell")
        elif core == "gru":
            self.cell = tf.keras.layers.GRUCell(units, name="gru_cell")
        else:
            raise ValueError(f"unknown recurrent core {core!r}; choose one of {CORES}")
        self.units = units
        self.output_size = units

    def call(self, window, mask):
        """window: float [B, k, D]; mask: float [B, k] (1 = a real step). Returns [B, units]."""
        batch = tf.shape(window)[0]
        states = [tf.zeros([batch, size], window.dtype) for size in tf.nest.flatten(self.cell.state_size)]
        for step in range(window.shape[1]):
            _, new_states = self.cell(window[:, step], states)
            keep = mask[:, step:step + 1] > 0.5  # [B, 1]
            states = [tf.where(keep, new, old) for new, old in zip(tf.nest.flatten(new_states), states)]
        return states[0]  # the hidden state h (LSTM: h, not c)
