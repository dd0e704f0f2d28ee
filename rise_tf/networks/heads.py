"""Q-value heads ω: linear, dueling (Wang et al. 2016) and IQN (Dabney et al. 2018) with dueling streams.

Each head maps features [B, F] to Q-values [B, A]. Options shared by all heads: an optional hidden
layer per stream (`hidden_units`, 0 = none) and factorised noisy linear layers (`noisy`, Fortunato
et al. 2018) in place of the plain ones. The IQN head is Beyond The Rainbow's (Clark et al. 2025):

    cos(π i τ), i = 0..C-1  → Dense(C → F) → ReLU  → ⊙ features      # [B, N, F]
    → dueling streams (noisy, 512 hidden in BTR)  → quantile values     # [B, N, A]
    Q(s, a) = mean over the N taus                                       # [B, A]

Noise and taus follow the `training` flag: training=True draws fresh noise (one draw per layer,
shared by the batch) and N taus ~ U(0, 1) per state; training=False uses the noise-free means and
the N fixed quantile midpoints τ_i = (2i + 1) / 2N, so evaluation and the exported step model are
deterministic. Deliberate deviation from BTR: BTR also samples random taus when evaluating.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from rise_tf.networks.choices import HEADS


class NoisyDense(tf.keras.layers.Layer):
    """Factorised Gaussian noisy linear layer: W = μ_W + σ_W ⊙ f(ε_in) f(ε_out)ᵀ, b = μ_b + σ_b ⊙ f(ε_out),
    f(x) = sgn(x) √|x|. μ ~ U(±1/√in), σ = σ0/√in (weights and biases, as BTR initialises them)."""

    def __init__(self, *, units: int, sigma0: float, name: str):
        super().__init__(name=name)
        self.units = units
        self.sigma0 = sigma0

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        bound = 1.0 / math.sqrt(fan_in)

        def weight(name, shape, initializer):
            return self.add_weight(name=name, shape=shape, initializer=initializer)

        # A fresh initializer per weight: Keras warns that reusing an unseeded one repeats its values.
        self.kernel_mu = weight("kernel_mu", [fan_in, self.units], tf.keras.initializers.RandomUniform(-bound, bound))
        self.kernel_sigma = weight("kernel_sigma", [fan_in, self.units], tf.keras.initializers.Constant(self.sigma0 * bound))
        self.bias_mu = weight("bias_mu", [self.units], tf.keras.initializers.RandomUniform(-bound, bound))
        self.bias_sigma = weight("bias_sigma", [self.units], tf.keras.initializers.Constant(self.sigma0 * bound))

    @staticmethod
    def _scaled_noise(size: int) -> tf.Tensor:
        x = tf.random.normal([size])
        return tf.sign(x) * tf.sqrt(tf.abs(x))

    def call(self, inputs, training=False):  # inputs: [B, in]
        if not training:
            return tf.matmul(inputs, self.kernel_mu) + self.bias_mu  # [B, units]
        noise_in = self._scaled_noise(self.kernel_mu.shape[0])  # [in]
        noise_out = self._scaled_noise(self.units)  # [units]
        # Forming W costs in*out multiplies; a second matmul over the batch would cost B*in*out.
        kernel = self.kernel_mu + self.kernel_sigma * (noise_in[:, None] * noise_out[None, :])
        return tf.matmul(inputs, kernel) + self.bias_mu + self.bias_sigma * noise_out


class _Stream(tf.keras.layers.Layer):
    """[hidden Dense -> ReLU ->] output Dense, plain or noisy; `output_name` names the output layer."""

    def __init__(self, *, outputs: int, hidden_units: int, noisy: bool, noisy_sigma0: float,
                 output_name: str, name: str):
        super().__init__(name=name)

        def dense(units, layer_name):
            if noisy:
                return NoisyDense(units=units, sigma0=noisy_sigma0, name=layer_name)
            return tf.keras.layers.Dense(units, name=layer_name)

        self.hidden = dense(hidden_units, f"{output_name}_hidden") if hidden_units else None
        self.out = dense(outputs, output_name)
        self.noisy = noisy

    def _apply(self, layer, x, training):
        return layer(x, training=training) if self.noisy else layer(x)

    def call(self, x, training=False):  # [B, F] -> [B, outputs]
        if self.hidden is not None:
            x = tf.nn.relu(self._apply(self.hidden, x, training))
        return self._apply(self.out, x, training)


class LinearHead(tf.keras.layers.Layer):
    distributional = False

    def __init__(self, *, num_actions: int, hidden_units: int, noisy: bool, noisy_sigma0: float,
                 name: str = "linear_head"):
        super().__init__(name=name)
        self.q = _Stream(outputs=num_actions, hidden_units=hidden_units, noisy=noisy,
                         noisy_sigma0=noisy_sigma0, output_name="q", name="q_stream")

    def call(self, features, training=False):  # [B, F] -> [B, A]
        return self.q(features, training=training)


class DuelingHead(tf.keras.layers.Layer):
    """Q = V + A - mean(A): a value stream and an advantage stream over the same features."""

    distributional = False

    def __init__(self, *, num_actions: int, hidden_units: int, noisy: bool, noisy_sigma0: float,
                 name: str = "dueling_head"):
        super().__init__(name=name)
        options = dict(hidden_units=hidden_units, noisy=noisy, noisy_sigma0=noisy_sigma0)
        self.value = _Stream(outputs=1, output_name="value", name="value_stream", **options)
        self.advantage = _Stream(outputs=num_actions, output_name="advantage", name="advantage_stream", **options)

    def call(self, features, training=False):  # [..., F] -> [..., A]
        advantage = self.advantage(features, training=training)
        return self.value(features, training=training) + advantage - tf.reduce_mean(advantage, -1, keepdims=True)


def quantile_midpoints(num_taus: int) -> np.ndarray:
    """The fixed taus of evaluation and export: (2i + 1) / 2N, i = 0..N-1."""
    return ((2 * np.arange(num_taus) + 1) / (2 * num_taus)).astype(np.float32)


class IqnHead(tf.keras.layers.Layer):
    """Implicit quantile head with dueling streams (BTR's). `quantiles` gives Z_τ(s, ·) at given taus;
    `call` gives Q = the mean over N taus (sampled when training, the midpoints otherwise)."""

    distributional = True

    def __init__(self, *, num_actions: int, hidden_units: int, noisy: bool, noisy_sigma0: float,
                 num_cosines: int, num_taus: int, name: str = "iqn_head"):
        super().__init__(name=name)
        if num_cosines < 1 or num_taus < 1:
            raise ValueError(f"num_cosines and num_taus must be >= 1, got {num_cosines} and {num_taus}")
        self.num_actions = num_actions
        self.num_cosines = num_cosines
        self.num_taus = num_taus
        self.streams = DuelingHead(num_actions=num_actions, hidden_units=hidden_units, noisy=noisy,
                                   noisy_sigma0=noisy_sigma0, name="dueling_streams")
        self.cosine_embedding = None

    def build(self, input_shape):  # [B, F]: the τ embedding is lifted to φ's width F
        self.cosine_embedding = tf.keras.layers.Dense(int(input_shape[-1]), activation="relu",
                                                      name="cosine_embedding")

    def sample_taus(self, batch_size, training=False) -> tf.Tensor:
        """[B, N] taus: uniform draws when training, the quantile midpoints otherwise."""
        if training:
            return tf.random.uniform([batch_size, self.num_taus])
        return tf.tile(tf.constant(quantile_midpoints(self.num_taus))[None], [batch_size, 1])

    def quantiles(self, features, taus, training=False) -> tf.Tensor:
        """features [B, F], taus [B, N] -> quantile values [B, N, A]."""
        feature_size = features.shape[-1]
        num_taus = taus.shape[1]
        frequencies = tf.constant(np.pi * np.arange(self.num_cosines), tf.float32)  # π i, i = 0..C-1
        cosines = tf.cos(taus[:, :, None] * frequencies)  # [B, N, C]
        tau_embedding = self.cosine_embedding(tf.reshape(cosines, [-1, self.num_cosines]))  # [B*N, F]
        tau_embedding = tf.reshape(tau_embedding, [-1, num_taus, feature_size])  # [B, N, F]
        mixed = tf.reshape(features[:, None, :] * tau_embedding, [-1, feature_size])  # [B*N, F]
        values = self.streams(mixed, training=training)  # [B*N, A]
        return tf.reshape(values, [-1, num_taus, self.num_actions])  # [B, N, A]

    def sampled_quantiles(self, features, training=False):
        """(quantile values [B, N, A], their taus [B, N]): taus sampled when training, midpoints otherwise."""
        taus = self.sample_taus(tf.shape(features)[0], training)
        return self.quantiles(features, taus, training), taus

    def call(self, features, training=False):  # [B, F] -> [B, A]
        return tf.reduce_mean(self.sampled_quantiles(features, training)[0], axis=1)


def make_head(name: str, *, num_actions: int, hidden_units: int, noisy: bool, noisy_sigma0: float,
              num_cosines: int, num_taus: int) -> tf.keras.layers.Layer:
    options = dict(num_actions=num_actions, hidden_units=hidden_units, noisy=noisy, noisy_sigma0=noisy_sigma0)
    if name == "linear":
        return LinearHead(**options)
    if name == "dueling":
        return DuelingHead(**options)
    if name == "iqn":
        return IqnHead(num_cosines=num_cosines, num_taus=num_taus, **options)
    raise ValueError(f"unknown head {name!r}; choose one of {HEADS}")
