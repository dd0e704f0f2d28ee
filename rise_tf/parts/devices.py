"""Where the learner runs. On a GPU host: memory growth on (TensorFlow would otherwise reserve all GPU
memory at start, leaving none for a second process such as evaluation or onnxruntime), and the
learner's device named once, so each sampled batch is copied to it once, by the sampler, off the
learner's critical path. On a CPU host, both are no-ops. The project's machines have no GPU: the GPU
branch is written to TensorFlow's documented API and is not measured here."""
from __future__ import annotations

import tensorflow as tf


def configure_learner_device() -> str:
    """Turns on memory growth for every visible GPU; returns the learner's device ('/GPU:0' or '/CPU:0')."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised (a second Trainer in one process): growth was set then
            pass
    return "/GPU:0" if gpus else "/CPU:0"


def learner_strategy(replicas: int):
    """MirroredStrategy over the first `replicas` GPUs (rise_tf/agents/mirrored.py), or None for one
    device. On a host without GPUs, logical CPU devices serve when the process configured that many
    (tests do, with tf.config.set_logical_device_configuration). Raises ValueError naming what was
    found when there are too few."""
    if replicas <= 1:
        return None
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    if len(devices) < replicas:
        raise ValueError(f"--learner-replicas {replicas} needs {replicas} GPUs; this host has {len(gpus)}. "
                         f"Use --learner-replicas 1 (or at most {max(len(gpus), 1)}).")
    return tf.distribute.MirroredStrategy([device.name for device in devices[:replicas]])
