import contextlib
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests compare CPU numbers, even on a GPU host

with contextlib.redirect_stderr(io.StringIO()):
    import gym  # noqa: F401  (TF-Agents imports gym 0.23, which prints a deprecation banner)

import pytest  # noqa: E402


def tiny_run(directory, algo="rise-dqn", game="Pong", extra=()):
    """A few hundred frames of real training: enough for a checkpoint to export, in seconds."""
    from rise_tf.train.cli import main as train_main

    args = ["--algo", algo, "--game", game, "--frames", "800", "--warmup-frames", "400", "--num-envs", "2",
            "--batch-size", "8", "--capacity", "2000", "--eval-every-frames", "0", "--no-progress",
            "--embedding-size", "16", "--core-units", "16", "--window-length", "6", "--run-dir", str(directory),
            *extra]
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


@pytest.fixture(scope="session")
def memory_onnx(tmp_path_factory):
    """A MemoryCorridor model from a tiny run (near chance: for plumbing, not for learning)."""
    from rise_tf.export import step_model

    run_dir = tiny_run(tmp_path_factory.mktemp("memory-run"), game="MemoryCorridor")
    path = str(tmp_path_factory.mktemp("memory-onnx") / "memory.onnx")
    step_model.export_onnx(step_model.load_policy(run_dir), path)
    return path


# ------------------------------------------------------------------ explicit small pieces
# Constructors take every argument explicitly (the run config is the only place defaults live);
# these helpers spell out small test sizes once, and each test overrides what it is about.

def spec_for(memory="rise", **overrides):
    from rise_tf.networks.rise_q_network import network_input_spec

    values = dict(frame_size=84, frame_stack=4, window_length=4, embedding_size=16)
    values.update(overrides)
    return network_input_spec(memory, **values)


def network_for(spec, num_actions, **overrides):
    from rise_tf.networks.rise_q_network import build_network

    values = dict(memory="rise", learnable_encoder="nature", width_scale=1, impala_pool_size=6,
                  spectral_norm=False, frozen_encoder="random_projection",
                  embedding_size=spec["embedding_window"].shape[-1] if "embedding_window" in spec else 16,
                  frozen_seed=0, core="lstm", core_units=8, core_gate_init="keras", fusion="gate", head="dueling", head_hidden_units=0,
                  noisy=False, noisy_sigma0=0.5, num_cosines=8, num_taus=4)
    values.update(overrides)
    return build_network(spec, num_actions=num_actions, **values)


def atari_settings(**overrides):
    from rise_runtime.envs import atari
    from rise_runtime.preprocessing import PreprocessingConfig

    values = dict(sticky_action_prob=atari.STICKY_ACTION_PROB, noop_max=atari.NOOP_MAX,
                  max_episode_frames=atari.MAX_EPISODE_FRAMES, preprocessing=PreprocessingConfig(), flicker_prob=0.0)
    values.update(overrides)
    return atari.AtariSettings(**values)


def describe(game, **atari_overrides):
    """The env registry's description of an Atari game (the standard protocol, then the overrides:
    sticky_action_prob, noop_max, max_episode_frames, flicker) or of a memory task."""
    import dataclasses

    from rise_runtime.envs import atari, memory_task

    if memory_task.is_memory_task(game):
        return {"kind": "memory", "name": game, **dataclasses.asdict(memory_task.MEMORY_TASKS[game])}
    values = {"kind": "atari", "name": game, "sticky_action_prob": atari.STICKY_ACTION_PROB,
              "noop_max": atari.NOOP_MAX, "max_episode_frames": atari.MAX_EPISODE_FRAMES, "flicker": 0.0}
    values.update(atari_overrides)
    return values


def lane_options(frame_size=84, terminal_on_life_loss=False):
    """make_frame_env / make_batched_env keyword arguments for a standard lane."""
    from rise_runtime.preprocessing import PreprocessingConfig

    return dict(preprocessing=PreprocessingConfig(frame_size=frame_size), terminal_on_life_loss=terminal_on_life_loss)
