import argparse

import pytest

from rise_tf.train.cli import build_parser, config_from_args, parse_count
from rise_tf.train.config import RunConfig, flag_table, make_config


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
