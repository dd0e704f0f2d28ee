"""Acting-time cost of each frozen encoder ϑ: milliseconds per frame to embed one 84x84 frame.

RISE runs ϑ once per frame while acting (never in the learner), so this is the whole price of the
encoder choice. Measured in one process, side by side, on a tf.function over ϑ alone, at batch 1
(one game) and batch 8 (eight lanes stepped together, per frame). The pretrained Keras models are
timed with random weights written to a temporary file: their cost does not depend on the values, and
nothing downloads here (the ImageNet files are not on this machine).
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

ENCODERS = ("random_projection", "random_cnn", "pooled_pixels", "snapshot (Nature φ)", "keras:MobileNetV2",
            "keras:ResNet50")


def _median_ms_per_frame(function, frames, repeats: int) -> float:
    import tensorflow as tf

    batch = tf.constant(frames)
    function(batch)  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(batch).numpy()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)) / len(frames)


def _encoder(name: str, directory: str, frame_size: int):
    import tensorflow as tf

    from rise_tf.networks.encoders import (KerasApplicationEncoder, NatureCNN, SnapshotEncoder,
                                           make_frozen_encoder)

    if name.startswith("snapshot"):
        phi = NatureCNN(width_scale=1)
        phi(tf.zeros([1, frame_size, frame_size, 4], tf.uint8))
        return SnapshotEncoder(encoder=phi, frame_stack=4, embedding_size=64, seed=0)
    if name.startswith("keras:"):
        model_name = name.split(":", 1)[1]
        path = os.path.join(directory, f"{model_name}.h5")
        getattr(tf.keras.applications, model_name)(include_top=False, weights=None, pooling="avg",
                                                   input_shape=(frame_size, frame_size, 3)).save_weights(path)
        return KerasApplicationEncoder(model_name=model_name, weights_path=path, embedding_size=64, seed=0)
    return make_frozen_encoder(name, embedding_size=64, seed=0)


def measure(repeats: int = 50, frame_size: int = 84) -> dict:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for name in ENCODERS:
            encoder = _encoder(name, directory, frame_size)
            embed = tf.function(lambda frames, e=encoder: e(frames))
            one = rng.integers(0, 256, (1, frame_size, frame_size), dtype=np.uint8)
            eight = rng.integers(0, 256, (8, frame_size, frame_size), dtype=np.uint8)
            results[name] = {"batch1_ms_per_frame": _median_ms_per_frame(embed, one, repeats),
                             "batch8_ms_per_frame": _median_ms_per_frame(embed, eight, max(repeats // 4, 5)),
                             "weights": int(sum(np.prod(v.shape) for v in encoder.variables))}
    return {"frame_size": frame_size, "encoders": results}


if __name__ == "__main__":
    import json

    from rise_tf.startup import quiet_third_party_startup

    quiet_third_party_startup()
    print(json.dumps(measure(), indent=2))
