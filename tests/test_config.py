import json
import argparse

import numpy as np

import pytest

from rise_tf.train.cli import build_parser, config_from_args, parse_count
from rise_tf.config import RunConfig, flag_table, make_config


def test_presets_pick_the_memory_model():
    assert make_config("dqn").network.memory == "none"
    assert make_config("rise-dqn").network.memory == "rise"
    assert make_config("r2d2-lite").network.memory == "full_recurrent"
    with pytest.raises(ValueError, match="unknown algo"):
        make_config("ppo")


def test_memory_task_is_scaled_down_and_counts_one_frame_per_step():
    config = make_config("rise-dqn", "MemoryCorridor")
    assert config.frames_per_agent_step == 1 and config.train.frames < 1_000_000
    assert make_config("rise-dqn", "Pong").frames_per_agent_step == 4


def test_scales_size_every_env_kind_in_agent_steps_and_default_by_kind():
    from rise_tf.config import CPU_SCALE

    cpu_train = CPU_SCALE["btr"]["train"]
    gym = make_config("rise-btr", env={"env_id": "ThirdParty/Colours-v0"})
    memory = make_config("rise-btr", "MemoryCorridor")
    pong_cpu = make_config("rise-btr", "Pong", scale="cpu")
    assert (gym.scale, memory.scale, make_config("rise-btr", "Pong").scale) == ("cpu", "cpu", "paper")
    for config, frames_per_step in ((gym, 1), (memory, 1), (pong_cpu, 4)):
        assert config.frames_per_agent_step == frames_per_step
        assert (config.env.num_envs, config.agent.batch_size, config.replay.capacity) == (8, 32, 50_000)
        assert config.network.learnable_encoder == "nature" and not config.network.spectral_norm
        # the same agent-step schedule on every kind, counted in that kind's frames
        assert config.train.warmup_frames == cpu_train["warmup_frames"] * frames_per_step == 2_000 * frames_per_step
        assert config.train.epsilon_decay_frames == 10_000 * frames_per_step
        assert config.train.frames == 40_000 * frames_per_step
    assert memory.agent.gamma == 0.9 and gym.agent.gamma == 0.997  # the memory task's horizon is its own
    # paper: BTR as published; 200M Atari frames are 50M agent steps, so 50M frames at action repeat 1
    paper_gym = make_config("rise-btr", env={"env_id": "ThirdParty/Colours-v0"}, scale="paper")
    assert (paper_gym.env.num_envs, paper_gym.agent.batch_size, paper_gym.train.frames) == (64, 256, 50_000_000)
    assert paper_gym.train.warmup_frames == 200_000 and make_config("rise-btr", "Pong").train.frames == 200_000_000
    # the DQN base's schedule is the dataclass defaults: converted too
    assert make_config("dqn", env={"env_id": "X-v0"}, scale="paper").train.warmup_frames == 80_000 // 4
    with pytest.raises(ValueError, match="unknown scale 'gpu'; choose one of cpu, paper"):
        make_config("rise-dqn", scale="gpu")


def test_a_config_lists_only_the_env_settings_its_kind_reads():
    gym = make_config("rise-dqn", env={"env_id": "ThirdParty/Colours-v0"}).to_dict()["env"]
    memory = make_config("rise-dqn", "MemoryCorridor").to_dict()["env"]
    atari = make_config("rise-dqn", "Pong").to_dict()["env"]
    atari_only = {"sticky_action_prob", "noop_max", "max_episode_frames", "terminal_on_life_loss"}
    assert not atari_only & set(gym) and not atari_only & set(memory) and atari_only <= set(atari)
    assert "action_repeat" in gym and "action_repeat" not in memory and "corridor_length" not in gym
    assert {"env_id", "env_module", "image_key"} & set(atari) == set()
    for config in (make_config("rise-dqn", env={"env_id": "ThirdParty/Colours-v0"}), make_config("rise-dqn", "MemoryCorridor")):
        assert RunConfig.from_dict(json.loads(config.to_json())) == config  # the hidden settings are defaults
    parser = build_parser()
    for argv, message in ((["--env-id", "ThirdParty/Colours-v0", "--noop-max", "3"],
                           "--noop-max applies to Atari games, not to gymnasium envs"),
                          (["--game", "MemoryCorridor", "--action-repeat", "2"],
                           "--action-repeat applies to Atari games or gymnasium envs .*, not to the memory tasks"),
                          (["--game", "Pong", "--num-cues", "3"], "--num-cues applies to the memory tasks")):
        with pytest.raises(ValueError, match=message):
            config_from_args(parser.parse_args(argv + ["--run-dir", "x"]))


def test_json_round_trip_and_differences():
    config = make_config("rise-dqn", "Breakout", train={"frames": 1234})
    again = RunConfig.from_json = RunConfig.from_dict(__import__("json").loads(config.to_json()))
    assert again == config
    other = config.replace(network={"window_length": 8})
    assert other.differences(config) == ["network.window_length: 8 -> 16"]
    with pytest.raises(ValueError, match="unknown network settings"):
        RunConfig.from_dict({"config_version": 1, "network": {"windw": 3}})


@pytest.mark.parametrize("updates, message", [
    ({"network": {"window_length": 0}}, "window_length"),
    ({"replay": {"capacity": -5}}, "capacity"),
    ({"network": {"frozen_encoder": "vgg"}}, "unknown frozen_encoder"),
    ({"network": {"head": "c51"}}, "unknown head"),
    ({"network": {"frozen_encoder": "pooled_pixels", "embedding_size": 50}}, "square"),
    ({"agent": {"gamma": 1.5}}, "gamma"),
    ({"env": {"num_envs": 0}}, "num_envs"),
    ({"train": {"frames": 0}}, "frames"),
])
def test_invalid_values_name_the_problem(updates, message):
    with pytest.raises(ValueError, match=message):
        make_config("rise-dqn", "Pong", **updates)


def test_counts_accept_suffixes():
    assert parse_count("2M") == 2_000_000
    assert parse_count("500k") == 500_000
    assert parse_count("1e6") == 1_000_000
    assert parse_count("1.5K") == 1_500
    with pytest.raises(argparse.ArgumentTypeError):
        parse_count("lots")


def test_every_field_is_a_flag_and_flags_reach_the_config():
    parser = build_parser()
    assert len(flag_table()) == sum(1 for a in parser._actions if "." in a.dest)
    args = parser.parse_args(["--algo", "dqn", "--frames", "2M", "--no-prioritized", "--core", "gru"])
    config = config_from_args(args)
    assert config.train.frames == 2_000_000 and not config.replay.prioritized
    assert config.network.core == "gru" and config.network.memory == "none"


def test_btr_presets_carry_beyond_the_rainbow_settings():
    config = make_config("rise-btr", "Phoenix")
    net, agent, train, replay = config.network, config.agent, config.train, config.replay
    assert (net.memory, net.learnable_encoder, net.width_scale, net.impala_pool_size) == ("rise", "impala", 2, 6)
    assert net.spectral_norm and net.noisy and net.head == "iqn" and net.head_hidden_units == 512
    assert (net.num_taus, net.num_cosines, net.noisy_sigma0) == (8, 64, 0.5)
    assert agent.loss == "quantile_huber" and agent.munchausen and not agent.double_dqn
    assert (agent.munchausen_temperature, agent.munchausen_alpha, agent.munchausen_log_policy_clip) == (0.03, 0.9, -1.0)
    assert (agent.gamma, agent.n_step, agent.batch_size, agent.learning_rate) == (0.997, 3, 256, 1e-4)
    assert agent.adam_epsilon == pytest.approx(0.005 / 256) and agent.gradient_clip_norm == 10
    assert agent.target_update_period == 500
    assert (replay.capacity, replay.priority_exponent, replay.importance_beta_start) == (1_048_576, 0.2, 0.4)
    assert config.env.num_envs == 64 and train.replay_ratio == pytest.approx(1 / 64)
    assert train.warmup_frames == 800_000 and train.eval_epsilon == 0.01 and train.epsilon_greedy_fraction == 0.5
    assert make_config("btr", "Phoenix").network.memory == "none"
    assert make_config("r2d2-btr", "Phoenix").network.memory == "full_recurrent"
    small = make_config("rise-btr", "MemoryCorridor")  # the per-task preset: a smaller body
    assert small.network.learnable_encoder == "nature" and small.network.head == "iqn" and small.agent.munchausen


def test_frozen_seed_follows_the_run_seed_unless_set():
    assert make_config("rise-dqn", train={"seed": 5}).frozen_seed == 5
    assert make_config("rise-dqn", train={"seed": 5}, network={"frozen_seed": 2}).frozen_seed == 2


@pytest.mark.parametrize("updates, message", [
    ({"network": {"head": "dueling"}}, "cannot train head 'dueling'"),
    ({"agent": {"double_dqn": True}}, "Munchausen targets replace double-DQN"),
    ({"network": {"learnable_encoder": "nature"}}, "spectral_norm applies to the Impala"),
    ({"agent": {"loss": "cross_entropy"}}, "unknown loss"),
    ({"train": {"replay_ratio": float("inf")}}, "replay_ratio must be a finite number"),
    ({"agent": {"learning_rate": float("nan")}}, "learning_rate must be a finite number"),
    ({"train": {"epsilon_schedule": "cosine"}}, "unknown epsilon_schedule"),
    ({"agent": {"batch_size": 10_000_000}}, "exceeds the replay capacity"),
])
def test_combinations_that_cannot_work_are_refused(updates, message):
    with pytest.raises(ValueError, match=message):
        make_config("rise-btr", "Pong", **updates)


def test_stopping_at_success_is_for_the_memory_tasks_only():
    """Success is a positive return on the memory tasks; Atari and gym envs do not define it."""
    train = {"stop_at_success": 0.9, "eval_every_frames": 1_000}
    assert make_config("rise-dqn", "MemoryCorridor", train=train).train.stop_at_success == 0.9
    for game, env in (("Pong", {}), (None, {"env_id": "ThirdParty/Colours-v0"})):
        with pytest.raises(ValueError, match=r"--stop-at-success counts the memory tasks' success .* drop --stop-at-success"):
            make_config("rise-dqn", game, env=env, train=train)


def test_numbers_accept_fractions_and_refuse_inf_and_nan():
    from rise_tf.counts import parse_real

    assert parse_real("1/64") == 1 / 64 and parse_real("1e-4") == 1e-4 and parse_real("-1") == -1.0
    for bad in ("inf", "nan", "-inf", "1/0", "lots"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_real(bad)
    for bad in ("inf", "nan", "1e400"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_count(bad)


def test_exploration_epsilon_schedules():
    from rise_tf.parts.schedules import exploration_epsilon

    btr = make_config("btr", "Pong", train={"frames": 100_000_000}).train
    assert exploration_epsilon(btr, 0) == pytest.approx(1.0)
    # geometric: ε_end + (1 - ε_end) e^(-t/T) with T = 8M frames (2M agent steps)
    assert exploration_epsilon(btr, 8_000_000) == pytest.approx(0.01 + 0.99 * np.exp(-1.0))
    assert exploration_epsilon(btr, 49_999_996) == pytest.approx(0.01, abs=0.002)
    assert exploration_epsilon(btr, 50_000_000) == 0.0  # second half: noisy nets explore alone
    dqn = make_config("dqn", "Pong").train
    assert exploration_epsilon(dqn, dqn.epsilon_decay_frames // 2) == pytest.approx(0.505)
    assert exploration_epsilon(dqn, dqn.frames - 1) == pytest.approx(dqn.epsilon_end)


def test_replay_memory_is_estimated_before_allocating():
    from rise_tf.run_dir import RunDirError, check_replay_fits
    from rise_tf.config import replay_layout

    config = make_config("rise-btr", "Pong")
    needed = check_replay_fits(config, available=100 * 2**30)
    # 84*84 frame + 64 float16 embedding + 22 bytes of scalars per step, plus the sum tree (2^20 leaves * 16 B)
    assert needed == 1_048_576 * (7056 + 128 + 22) + 2 * 1_048_576 * 8
    assert replay_layout(config).estimated_bytes() == needed
    with pytest.raises(RunDirError, match=r"needs about 7\.1 GiB.*only 4\.0 GiB.*Lower --capacity \(about 475,"):
        check_replay_fits(config, available=4 * 2**30)


def test_help_and_config_load_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from rise_tf.train.cli import build_parser; build_parser().format_help(); "
            "import rise_tf.config, rise_tf.run_dir; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
