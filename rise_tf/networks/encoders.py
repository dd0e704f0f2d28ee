"""Encoders: learnable φ (Nature CNN, Impala CNN) and non-learnable ϑ (RISE's frozen encoders).

φ takes a frame stack, uint8 [B, H, W, C], and is trained. ϑ takes one frame, uint8 [B, H, W], and
is never trained: its weights are drawn once from a numpy generator seeded by `seed`, held as
non-trainable variables (so they are saved in checkpoints and exported), and identical on every
machine for the same seed. Two ϑ bring weights from outside: `SnapshotEncoder` (φ of an earlier run)
and `KerasApplicationEncoder` (a pretrained vision model); their fixed projections are seeded too. Pooling is done with fixed area-averaging matrices (two MatMuls) rather
than image-resize ops so that ϑ exports to plain ONNX.

The Impala CNN can carry spectral normalisation (Miyato et al. 2018) on the two convolutions of each
residual block, as Beyond The Rainbow does. Deliberate deviation: BTR uses PyTorch's
`parametrizations.spectral_norm` (W/σ(W) recomputed in every forward, gradients through σ); we use
Keras' `SpectralNormalization`, which on every training call runs one power iteration and rescales
the kernel variable in place (gradients then reach the rescaled kernel directly). Both keep the
residual convolutions' largest singular value at 1; the library layer also exports as a plain
convolution (inference reads the stored, already normalised kernel).
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from rise_tf.networks.choices import FROZEN_ENCODERS, KERAS_APPLICATIONS, LEARNABLE_ENCODERS
from rise_tf.networks.precision import keras_policy


def area_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] matrix whose rows average the input cells each output cell covers (area resize)."""
    matrix = np.zeros((out_size, in_size), np.float64)
    scale = in_size / out_size
    for row in range(out_size):
        start, end = row * scale, (row + 1) * scale
        for col in range(int(math.floor(start)), int(math.ceil(end))):
            overlap = min(end, col + 1) - max(start, col)
            if overlap > 0:
                matrix[row, col] = overlap / scale
    return matrix.astype(np.float32)


def _to_unit_float(frames: tf.Tensor) -> tf.Tensor:
    return tf.cast(frames, tf.float32) / 255.0


# ----------------------------------------------------------------------------- learnable φ


class NatureCNN(tf.keras.layers.Layer):
    """Mnih et al. (2015): 3 convolutions then a 512-unit dense layer."""

    def __init__(self, *, width_scale: int, feature_units: int = 512, name: str = "nature_cnn"):
        super().__init__(name=name)
        w = width_scale
        self.convs = [
            tf.keras.layers.Conv2D(32 * w, 8, 4, activation="relu", name="conv1"),
            tf.keras.layers.Conv2D(64 * w, 4, 2, activation="relu", name="conv2"),
            tf.keras.layers.Conv2D(64 * w, 3, 1, activation="relu", name="conv3"),
        ]
        self.flatten = tf.keras.layers.Flatten()
        self.dense = tf.keras.layers.Dense(feature_units, activation="relu", name="features")
        self.output_size = feature_units

    def call(self, frames, training=False):  # frames: uint8 [B, H, W, C]
        x = _to_unit_float(frames)
        for conv in self.convs:
            x = conv(x)
        return self.dense(self.flatten(x))  # [B, 512]


class SpectralNormalization(tf.keras.layers.SpectralNormalization):
    """Keras' layer with a graph-safe `normalize_weights`: Keras 2.15 branches on a tensor with a
    Python `if` (a check for all-zero weights), which fails inside TF-Agents' policy functions
    (compiled with autograph off). Same maths: one power iteration, then kernel /= σ in place."""

    def normalize_weights(self):
        weights = tf.reshape(self.kernel, [-1, self.kernel_shape[-1]])  # [fan_in, out]
        vector_u = self.vector_u
        for _ in range(self.power_iterations):
            vector_v = tf.math.l2_normalize(tf.matmul(vector_u, weights, transpose_b=True))
            vector_u = tf.math.l2_normalize(tf.matmul(vector_v, weights))
        vector_u, vector_v = tf.stop_gradient(vector_u), tf.stop_gradient(vector_v)
        sigma = tf.matmul(tf.matmul(vector_v, weights), vector_u, transpose_b=True)  # [1, 1]
        self.vector_u.assign(vector_u)
        # divide_no_nan leaves an all-zero kernel as it is (Keras skips it with the `if`).
        self.kernel.assign(tf.reshape(tf.math.divide_no_nan(weights, sigma), self.kernel_shape))


class _ResidualBlock(tf.keras.layers.Layer):
    def __init__(self, *, channels: int, spectral_norm: bool, name: str):
        super().__init__(name=name)
        self.conv_a = tf.keras.layers.Conv2D(channels, 3, padding="same", name="conv_a")
        self.conv_b = tf.keras.layers.Conv2D(channels, 3, padding="same", name="conv_b")
        self.spectral_norm = spectral_norm
        if spectral_norm:
            self.conv_a = SpectralNormalization(self.conv_a, name="sn_conv_a")
            self.conv_b = SpectralNormalization(self.conv_b, name="sn_conv_b")

    def _conv(self, conv, x, training):
        # A training call runs the power iteration and renormalises the kernel (see module docstring).
        return conv(x, training=bool(training)) if self.spectral_norm else conv(x)

    def call(self, x, training=False):
        hidden = self._conv(self.conv_a, tf.nn.relu(x), training)
        return x + self._conv(self.conv_b, tf.nn.relu(hidden), training)


def adaptive_max_pool(x: tf.Tensor, out_size: int) -> tf.Tensor:
    """Max-pool [B, H, W, C] to [B, out, out, C] with PyTorch's adaptive bin edges (static shapes)."""
    height, width = x.shape[1], x.shape[2]

    def bins(size):
        return [(i * size // out_size, -(-(i + 1) * size // out_size)) for i in range(out_size)]

    rows = [tf.reduce_max(x[:, a:b], axis=1, keepdims=True) for a, b in bins(height)]
    x = tf.concat(rows, axis=1)
    cols = [tf.reduce_max(x[:, :, a:b], axis=2, keepdims=True) for a, b in bins(width)]
    return tf.concat(cols, axis=2)


class ImpalaCNN(tf.keras.layers.Layer):
    """Espeholt et al. (2018) residual CNN; `width_scale` multiplies channels (Beyond The Rainbow
    uses 2), followed by an adaptive max-pool to `pool_size` x `pool_size` and a flatten."""

    def __init__(self, *, width_scale: int, pool_size: int, spectral_norm: bool, name: str = "impala_cnn"):
        super().__init__(name=name)
        self.stages = []
        for i, channels in enumerate((16 * width_scale, 32 * width_scale, 32 * width_scale)):
            self.stages.append((
                tf.keras.layers.Conv2D(channels, 3, padding="same", name=f"stage{i}_conv"),
                tf.keras.layers.MaxPool2D(3, 2, padding="same"),
                _ResidualBlock(channels=channels, spectral_norm=spectral_norm, name=f"stage{i}_res0"),
                _ResidualBlock(channels=channels, spectral_norm=spectral_norm, name=f"stage{i}_res1"),
            ))
        self.pool_size = pool_size
        self.output_size = 32 * width_scale * pool_size * pool_size

    def call(self, frames, training=False):  # frames: uint8 [B, H, W, C]
        x = _to_unit_float(frames)
        for conv, pool, res0, res1 in self.stages:
            x = res1(res0(pool(conv(x)), training=training), training=training)
        x = adaptive_max_pool(tf.nn.relu(x), self.pool_size)
        return tf.reshape(x, [-1, self.output_size])  # [B, 32*w*pool*pool]


def make_learnable_encoder(name: str, *, width_scale: int, impala_pool_size: int, spectral_norm: bool):
    if name == "nature":
        if spectral_norm:
            raise ValueError("spectral_norm applies to the Impala CNN's residual blocks; the Nature CNN "
                             "has none (use learnable_encoder impala, or no spectral_norm)")
        return NatureCNN(width_scale=width_scale)
    if name == "impala":
        return ImpalaCNN(width_scale=width_scale, pool_size=impala_pool_size, spectral_norm=spectral_norm)
    raise ValueError(f"unknown learnable encoder {name!r}; choose one of {LEARNABLE_ENCODERS}")


# ----------------------------------------------------------------------------- frozen ϑ


class _FrozenEncoder(tf.keras.layers.Layer):
    """Base for ϑ: constants created from a seeded numpy generator, never trainable."""

    def __init__(self, *, embedding_size: int, seed: int, name: str):
        super().__init__(name=name, trainable=False, dtype="float32")  # float32 under mixed precision too
        if embedding_size < 1:
            raise ValueError(f"embedding_size must be >= 1, got {embedding_size}")
        self.embedding_size = embedding_size
        self._rng = np.random.default_rng(seed)

    def _constant(self, name: str, value: np.ndarray) -> tf.Variable:
        return self.add_weight(name=name, shape=value.shape, dtype=tf.float32, trainable=False,
                               initializer=tf.constant_initializer(value))

    @staticmethod
    def _pool(frames: tf.Tensor, rows: tf.Variable, cols: tf.Variable) -> tf.Tensor:
        """[B, H, W] -> [B, h, w] by area averaging, rows @ frame @ cols^T, as 2-D matmuls only
        (einsum and batched broadcasting do not survive ONNX conversion everywhere)."""
        height, width = frames.shape[1], frames.shape[2]
        out_h, out_w = rows.shape[0], cols.shape[0]
        x = tf.reshape(_to_unit_float(frames), [-1, width])  # [B*H, W]
        x = tf.matmul(x, cols, transpose_b=True)  # [B*H, w]
        x = tf.transpose(tf.reshape(x, [-1, height, out_w]), [0, 2, 1])  # [B, w, H]
        x = tf.matmul(tf.reshape(x, [-1, height]), rows, transpose_b=True)  # [B*w, h]
        return tf.transpose(tf.reshape(x, [-1, out_w, out_h]), [0, 2, 1])  # [B, h, w]


class RandomProjectionEncoder(_FrozenEncoder):
    """Area-downsample the frame by `downsample`, flatten, multiply by a fixed Gaussian matrix."""

    def __init__(self, *, embedding_size: int, seed: int, downsample: int = 2, name: str = "random_projection"):
        super().__init__(embedding_size=embedding_size, seed=seed, name=name)
        self.downsample = downsample

    def build(self, input_shape):  # input_shape: [B, H, W]
        height, width = int(input_shape[1]), int(input_shape[2])
        small_h, small_w = height // self.downsample, width // self.downsample
        self.rows = self._constant("pool_rows", area_resize_matrix(height, small_h))
        self.cols = self._constant("pool_cols", area_resize_matrix(width, small_w))
        fan_in = small_h * small_w
        projection = self._rng.standard_normal((fan_in, self.embedding_size)) / math.sqrt(fan_in)
        self.projection = self._constant("projection", projection.astype(np.float32))

    def call(self, frames):  # frames: uint8 [B, H, W]
        pooled = self._pool(frames, self.rows, self.cols)
        flat = tf.reshape(pooled, [-1, self.projection.shape[0]])
        return tf.matmul(flat, self.projection)  # [B, E]


class FrozenRandomCNN(_FrozenEncoder):
    """Nature-CNN convolutions with fixed random (He-normal) weights, then a fixed projection to E."""

    def __init__(self, *, embedding_size: int, seed: int, name: str = "frozen_random_cnn"):
        super().__init__(embedding_size=embedding_size, seed=seed, name=name)
        self._conv_shapes = [(8, 4, 32), (4, 2, 64), (3, 1, 64)]  # (kernel, stride, channels)

    def build(self, input_shape):
        height, width, channels = int(input_shape[1]), int(input_shape[2]), 1
        self.kernels, self.biases = [], []
        for i, (kernel, stride, out_channels) in enumerate(self._conv_shapes):
            fan_in = kernel * kernel * channels
            weights = self._rng.standard_normal((kernel, kernel, channels, out_channels))
            self.kernels.append(self._constant(f"kernel{i}", (weights * math.sqrt(2.0 / fan_in)).astype(np.float32)))
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
            channels = out_channels
        fan_in = height * width * channels
        projection = self._rng.standard_normal((fan_in, self.embedding_size)) / math.sqrt(fan_in)
        self.projection = self._constant("projection", projection.astype(np.float32))

    def call(self, frames):  # frames: uint8 [B, H, W]
        x = _to_unit_float(frames)[..., None]
        for kernel, (_, stride, _) in zip(self.kernels, self._conv_shapes):
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, stride, "VALID"))
        flat = tf.reshape(x, [-1, self.projection.shape[0]])
        return tf.matmul(flat, self.projection)  # [B, E]


class PooledPixelsEncoder(_FrozenEncoder):
    """The frame itself, area-averaged to a g x g grid (E = g^2) and centred: no weights at all."""

    def __init__(self, *, embedding_size: int, seed: int, name: str = "pooled_pixels"):
        super().__init__(embedding_size=embedding_size, seed=seed, name=name)
        grid = int(round(math.sqrt(embedding_size)))
        if grid * grid != embedding_size:
            raise ValueError(f"pooled_pixels needs a square embedding_size (g*g), got {embedding_size}; "
                             f"use e.g. {max(grid, 1) ** 2} or {(grid + 1) ** 2}")
        self.grid = grid

    def build(self, input_shape):
        self.rows = self._constant("pool_rows", area_resize_matrix(int(input_shape[1]), self.grid))
        self.cols = self._constant("pool_cols", area_resize_matrix(int(input_shape[2]), self.grid))

    def call(self, frames):  # frames: uint8 [B, H, W]
        return tf.reshape(self._pool(frames, self.rows, self.cols) - 0.5, [-1, self.embedding_size])


class SnapshotEncoder(_FrozenEncoder):
    """φ of an earlier run, frozen: its CNN features of the frame, then a fixed projection to E.

    Deliberate deviation: φ was trained on stacks of `frame_stack` frames, while ϑ sees one frame
    (RISE embeds each frame once, at acting time); the frame is shown to φ as a still stack (the
    same frame in every channel). The weights arrive already loaded (the builder restores them
    from the earlier run's checkpoint) and are saved in this run's checkpoints and exports.
    """

    def __init__(self, *, encoder: tf.keras.layers.Layer, frame_stack: int, embedding_size: int, seed: int,
                 name: str = "snapshot"):
        super().__init__(embedding_size=embedding_size, seed=seed, name=name)
        encoder.trainable = False
        self.encoder = encoder
        self.frame_stack = frame_stack

    def build(self, input_shape):
        fan_in = self.encoder.output_size
        projection = self._rng.standard_normal((fan_in, self.embedding_size)) / math.sqrt(fan_in)
        self.projection = self._constant("projection", projection.astype(np.float32))

    def call(self, frames):  # frames: uint8 [B, H, W]
        still_stack = tf.repeat(frames[..., None], self.frame_stack, axis=-1)
        return tf.matmul(self.encoder(still_stack, training=False), self.projection)  # [B, E]


class KerasApplicationEncoder(_FrozenEncoder):
    """A pretrained tf.keras.applications model (ImageNet weights from a local file): the grayscale
    frame as RGB, the model's own preprocessing, its globally average-pooled last feature map (the
    penultimate layer), then a fixed projection to E. Frames must be at least 32 pixels a side."""

    def __init__(self, *, model_name: str, weights_path: str, embedding_size: int, seed: int,
                 name: str = "keras_application"):
        super().__init__(embedding_size=embedding_size, seed=seed, name=name)
        self.model_name = model_name
        self.weights_path = weights_path

    def build(self, input_shape):
        size = (int(input_shape[1]), int(input_shape[2]), 3)
        with keras_policy("float32"):
            self.model = getattr(tf.keras.applications, self.model_name)(
                include_top=False, weights=None, input_shape=size, pooling="avg")
        self.model.load_weights(self.weights_path)
        self.model.trainable = False
        module = getattr(tf.keras.applications, KERAS_APPLICATIONS[self.model_name][1])
        self._preprocess = module.preprocess_input
        fan_in = int(self.model.output_shape[-1])
        projection = self._rng.standard_normal((fan_in, self.embedding_size)) / math.sqrt(fan_in)
        self.projection = self._constant("projection", projection.astype(np.float32))

    def call(self, frames):  # frames: uint8 [B, H, W]
        rgb = tf.repeat(tf.cast(frames, tf.float32)[..., None], 3, axis=-1)  # 0..255, as the models expect
        features = self.model(self._preprocess(rgb), training=False)
        return tf.matmul(features, self.projection)  # [B, E]


def make_frozen_encoder(name: str, *, embedding_size: int, seed: int) -> _FrozenEncoder:
    if name == "random_projection":
        return RandomProjectionEncoder(embedding_size=embedding_size, seed=seed)
    if name == "random_cnn":
        return FrozenRandomCNN(embedding_size=embedding_size, seed=seed)
    if name == "pooled_pixels":
        return PooledPixelsEncoder(embedding_size=embedding_size, seed=seed)
    raise ValueError(f"unknown frozen encoder {name!r}; choose one of {FROZEN_ENCODERS} (snapshot and Keras "
                     f"encoders are built by the caller and passed in as layers)")
