import contextlib
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests compare CPU numbers, even on a GPU host

with contextlib.redirect_stderr(io.StringIO()):
    import gym  # noqa: F401  (TF-Agents imports gym 0.23, which prints a deprecation banner)

import pytest  # noqa: E402


def tiny_run(directory, algo="rise-dqn", game="Pong"):
    """A few hundred frames of real training: enough for a checkpoint to export, in seconds."""
    from rise_tf.train.cli import main as train_main

    args = ["--algo", algo, "--game", game, "--frames", "800", "--warmup-frames", "400", "--num-envs", "2",
            "--batch-size", "8", "--capacity", "2000", "--eval-every-frames", "0", "--no-progress",
            "--embedding-size", "16", "--core-units", "16", "--window-length", "6", "--run-dir", str(directory)]
    assert train_main(args) == 0
    return str(directory)


@pytest.fixture(scope="session")
def pong_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("pong-run"))


@pytest.fixture(scope="session")
def pong_onnx(pong_run, tmp_path_factory):
    from rise_tf.export import step_model

    path = str(tmp_path_factory.mktemp("pong-onnx") / "pong.onnx")
    step_model.export_onnx(step_model.load_policy(pong_run), path)
    return path
