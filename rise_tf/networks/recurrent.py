"""The recurrent core ψ: an LSTM (or GRU) over a fixed window of k steps with a validity mask.

Windows are left-padded: steps before the episode's first frame hold zeros and mask 0. The cell is
unrolled over the k steps (k is small, 16 by default) and a masked step leaves the state unchanged,
so the output equals running the cell over the valid suffix only, from a zero state. Unrolling with
static shapes also keeps the exported ONNX graph free of loop and mask-specific ops.
"""
from __future__ import annotations

import tensorflow as tf

CORES = ("lstm", "gru")
GRU_UPDATE_GATE_BIAS = 1.0


class _GruUpdateGateBias(tf.keras.initializers.Initializer):
    """Zeros, except +GRU_UPDATE_GATE_BIAS on the update gate z (Keras order: z, r, h).

    The GRU analogue of the LSTM's unit forget bias: z = σ(1) ≈ 0.73 keeps most of the state at
    each step, so a cue seen k steps ago still reaches the gradient at the start of training.
    With Keras' zero bias (z ≈ 0.5) the state halves every step, and on MemoryCorridor the GRU core
    failed to learn in 3 of 3 seeds (see results/ablations.md).
    """

    def __call__(self, shape, dtype=None, **kwargs):
        units = shape[-1] // 3
        bias = tf.zeros(shape, dtype or tf.float32)
        z_part = tf.concat([tf.fill([units], GRU_UPDATE_GATE_BIAS), tf.zeros([shape[-1] - units])], 0)
        first_row = tf.cast(z_part, bias.dtype)
        if len(shape) == 1:
            return first_row
        return tf.concat([first_row[None], bias[1:]], 0)  # reset_after: row 0 input bias, row 1 recurrent


class MaskedRecurrentCore(tf.keras.layers.Layer):
    def __init__(self, units: int = 256, core: str = "lstm", name: str = "recurrent_core"):
        super().__init__(name=name)
        if units < 1:
            raise ValueError(f"core units must be >= 1, got {units}")
        if core == "lstm":
            self.cell = tf.keras.layers.LSTMCell(units, name="lstm_cell")
        elif core == "gru":
            self.cell = tf.keras.layers.GRUCell(units, bias_initializer=_GruUpdateGateBias(), name="gru_cell")
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
