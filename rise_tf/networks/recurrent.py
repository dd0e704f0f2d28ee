"""The recurrent core ψ: an LSTM (or GRU) over a fixed window of k steps with a validity mask.

Windows are left-padded: steps before the episode's first frame hold zeros and mask 0. The cell is
unrolled over the k steps (k is small, 16 by default) and a masked step leaves the state unchanged,
so the output equals running the cell over the valid suffix only, from a zero state. Unrolling with
static shapes also keeps the exported ONNX graph free of loop and mask-specific ops.

Gate initialisation (`gate_init`): "keras" keeps Keras' defaults — the LSTM's forget-gate bias at 1,
the GRU's biases at 0, so at initialisation a GRU keeps about half of its state per step and the
decision-time output is ~13x less sensitive to a cue 9 steps back than the LSTM's (measured on
MemoryCorridor's embeddings: results/README.md; a test in tests/test_networks.py). "chrono" (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?") draws the
LSTM forget-gate bias (and minus it for the input gate), or the GRU update-gate bias, from
log(U(1, k − 1)) for a window of k steps, so the initial memory spans the window.
"""
from __future__ import annotations

import tensorflow as tf

from rise_tf.networks.choices import CORE_GATE_INITS, CORES


class MaskedRecurrentCore(tf.keras.layers.Layer):
    def __init__(self, *, units: int, core: str, gate_init: str, name: str = "recurrent_core"):
        super().__init__(name=name)
        if gate_init not in CORE_GATE_INITS:
            raise ValueError(f"unknown gate_init {gate_init!r}; choose one of {CORE_GATE_INITS}")
        self.gate_init = gate_init
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

    def build(self, input_shape):  # input_shape: [B, k, D]
        self.cell.build(tf.TensorShape([None, input_shape[-1]]))
        if self.gate_init == "chrono":
            window_length = int(input_shape[1])
            timescale = tf.math.log(tf.random.uniform([self.units], 1.0, max(window_length - 1, 2)))
            units = self.units
            if isinstance(self.cell, tf.keras.layers.LSTMCell):  # bias [i, f, c, o]
                bias = tf.concat([-timescale, timescale, self.cell.bias[2 * units:]], axis=0)
            else:  # GRU (reset_after): bias [2, 3 units], input bias first; gates [z, r, h]; z keeps the state
                bias = tf.concat([timescale[None], self.cell.bias[:1, units:]], axis=1)
                bias = tf.concat([bias, self.cell.bias[1:]], axis=0)
            self.cell.bias.assign(bias)
        super().build(input_shape)

    def call(self, window, mask):
        """window: float [B, k, D]; mask: float [B, k] (1 = a real step). Returns [B, units]."""
        batch = tf.shape(window)[0]
        states = [tf.zeros([batch, size], window.dtype) for size in tf.nest.flatten(self.cell.state_size)]
        for step in range(window.shape[1]):
            _, new_states = self.cell(window[:, step], states)
            keep = mask[:, step:step + 1] > 0.5  # [B, 1]
            states = [tf.where(keep, new, old) for new, old in zip(tf.nest.flatten(new_states), states)]
        return states[0]  # the hidden state h (LSTM: h, not c)
