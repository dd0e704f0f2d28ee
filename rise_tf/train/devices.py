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
