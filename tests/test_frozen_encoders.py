"""ϑ from outside: φ of an earlier run (snapshot:RUN_DIR) and a pretrained Keras application
(keras:NAME). Nothing downloads here: the Keras weights file is built locally by the test (random
weights saved under the file name Keras caches ImageNet weights as) and KERAS_HOME points at it."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rise_tf.networks.choices import KERAS_APPLICATIONS, keras_weights_path
from rise_tf.train.cli import main

TINY_MEMORY = ["--game", "MemoryCorridor", "--num-envs", "2", "--warmup-frames", "40", "--batch-size", "8",
               "--capacity", "2000", "--eval-every-frames", "0", "--checkpoint-every-frames", "120",
               "--log-every-frames", "60", "--no-progress", "--embedding-size", "16", "--core-units", "16",
               "--frame-size", "42", "--window-length", "4", "--frames", "120"]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("snapshot") / "source")
    assert main(TINY_MEMORY + ["--algo", "dqn", "--run-dir", run_dir]) == 0
    return run_dir


def _latest_encoder_weights(run_dir):
    from rise_tf.export.step_model import load_policy

    return [v.numpy() for v in load_policy(run_dir).network.learnable_encoder.variables]


def test_snapshot_encoder_is_the_earlier_runs_phi_frozen_saved_and_exported(source_run, tmp_path):
    from export.cli import main as export_main
    from rise_tf.export.step_model import load_policy

    run_dir = str(tmp_path / "rise-on-snapshot")
    assert main(TINY_MEMORY + ["--algo", "rise-dqn", "--frozen-encoder", f"snapshot:{source_run}",
                               "--run-dir", run_dir]) == 0
    with open(os.path.join(run_dir, "config.json")) as f:
        recorded = json.load(f)["network"]["frozen_encoder"]
    assert recorded == "snapshot:" + os.path.abspath(source_run)  # absolute: the run can be resumed from anywhere
    loaded = load_policy(run_dir)
    theta = loaded.network.frozen_encoder
    # ϑ's CNN holds exactly the source run's trained φ weights, untouched by this run's training.
    for mine, theirs in zip(theta.encoder.variables, _latest_encoder_weights(source_run)):
        np.testing.assert_array_equal(mine.numpy(), theirs)
    assert not any(v is w for v in loaded.network.trainable_variables for w in theta.variables)
    frame = np.random.default_rng(0).integers(0, 255, (1, 42, 42), dtype=np.uint8)
    still = np.repeat(frame[..., None], 4, axis=-1)
    expected = theta.encoder(tf.constant(still)).numpy() @ theta.projection.numpy()
    np.testing.assert_allclose(loaded.network.embed_frames(tf.constant(frame)).numpy(), expected, rtol=1e-5, atol=1e-5)
    # Exported like every other ϑ, and the TF and ONNX policies agree.
    assert export_main([run_dir, "--out", str(tmp_path / "snapshot.onnx"), "--parity-steps", "16"]) == 0


def test_snapshot_bad_inputs_are_named_before_anything_is_written(source_run, tmp_path, capsys):
    run_dir = tmp_path / "never"
    cases = [(["--frozen-encoder", f"snapshot:{tmp_path / 'nowhere'}"], "config.json is missing"),
             (["--frozen-encoder", f"snapshot:{source_run}", "--frame-size", "48"], "Set --frame-size 42"),
             (["--frozen-encoder", "snapshot:"], "needs a run directory"),
             (["--frozen-encoder", "keras:VGG16"], "unknown Keras application 'VGG16'")]
    size_at = TINY_MEMORY.index("--frame-size")
    without_size = TINY_MEMORY[:size_at] + TINY_MEMORY[size_at + 2:]
    for extra, message in cases:
        argv = without_size if "--frame-size" in extra else TINY_MEMORY
        assert main(argv + ["--algo", "rise-dqn", "--run-dir", str(run_dir)] + extra) == 2, extra
        assert message in capsys.readouterr().err, extra
        assert not run_dir.exists()


def test_keras_application_encoder_reads_the_cache_and_never_downloads(tmp_path, monkeypatch, capsys):
    from rise_tf.export.step_model import load_policy

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    run_dir = tmp_path / "mobilenet"
    argv = TINY_MEMORY + ["--algo", "rise-dqn", "--frozen-encoder", "keras:MobileNetV2", "--run-dir", str(run_dir)]
    assert main(argv) == 2  # not in the cache yet: a clear error, no download, nothing written
    assert "not in the Keras cache" in capsys.readouterr().err and not run_dir.exists()

    # Build the weights file locally, as the user's cache would hold it (random weights, not ImageNet's).
    path = keras_weights_path("MobileNetV2")
    assert os.path.basename(path) == KERAS_APPLICATIONS["MobileNetV2"][0]
    os.makedirs(os.path.dirname(path))
    tf.keras.utils.set_random_seed(3)
    reference = tf.keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(42, 42, 3),
                                                  pooling="avg")
    reference.save_weights(path)
    assert main(argv) == 0
    theta = load_policy(str(run_dir)).network.frozen_encoder
    for mine, theirs in zip(theta.model.weights, reference.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    frame = np.random.default_rng(1).integers(0, 255, (2, 42, 42), dtype=np.uint8)
    rgb = np.repeat(frame[..., None].astype(np.float32), 3, axis=-1)
    features = reference(tf.keras.applications.mobilenet_v2.preprocess_input(rgb), training=False).numpy()
    np.testing.assert_allclose(theta(tf.constant(frame)).numpy(), features @ theta.projection.numpy(),
                               rtol=1e-4, atol=1e-4)
    assert not theta.trainable_weights
