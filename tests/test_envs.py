import numpy as np
import pytest
from tf_agents.environments import utils as env_utils

from rise_runtime.envs.atari import available_games, resolve_game
from rise_runtime.envs.memory_task import MemoryCorridorEnv
from rise_tf.envs.py_env import make_batched_env, make_frame_env

from conftest import atari_settings, describe, lane_options


def test_pong_passes_tf_agents_validation():
    env = make_frame_env(describe("Pong", max_episode_frames=2_000), seed=0, **lane_options())
    env_utils.validate_py_environment(env, episodes=2)
    assert env.observation_spec().shape == (84, 84)
    assert env.action_meanings[0] == "NOOP"


def test_memory_task_passes_tf_agents_validation():
    env_utils.validate_py_environment(make_frame_env(describe("MemoryCorridor"), seed=0, **lane_options()), episodes=5)


def test_game_names_resolve_and_unknown_names_list_close_matches():
    assert resolve_game("space_invaders") == "SpaceInvaders"
    assert resolve_game("ALE/Breakout-v5") == "Breakout"
    assert len(available_games()) > 50
    with pytest.raises(ValueError, match="Closest valid names: Pong"):
        resolve_game("Pnog")
    # A gymnasium id given as --game points to --env-id, not to the start of the Atari list.
    with pytest.raises(ValueError, match="looks like a gymnasium id: train on it with --env-id VizdoomMyWayHome-v1") as error:
        resolve_game("VizdoomMyWayHome-v1")
    assert "Adventure" not in str(error.value)
    with pytest.raises(ValueError, match="use --env-id <id> instead of --game"):
        resolve_game("qqqq")


def test_truncation_is_last_with_discount_one_and_counts_emulator_frames():
    env = make_frame_env(describe("Pong", max_episode_frames=400, noop_max=0), seed=1, **lane_options())
    time_step = env.reset()
    steps = 0
    while not time_step.is_last():
        time_step = env.step(np.int32(0))
        steps += 1
    assert steps == 100  # 400 frames / action repeat 4
    assert time_step.discount == 1.0  # truncated: the learner bootstraps


def test_life_loss_gives_zero_discount_but_the_episode_goes_on():
    env = make_frame_env(describe("Breakout"), seed=0, **lane_options(terminal_on_life_loss=True))
    time_step = env.reset()
    saw_life_loss = False
    for _ in range(3_000):
        time_step = env.step(np.int32(1))  # FIRE, then the paddle stays still and lives are lost
        if time_step.is_last():
            break
        if time_step.discount == 0.0:
            saw_life_loss = True
            assert time_step.is_mid()
    assert saw_life_loss and time_step.is_last()


def test_memory_task_rewards_only_the_cued_choice():
    env = MemoryCorridorEnv(corridor_length=3, num_cues=2, cue_steps=1, distractor_prob=0.0, frame_size=84)
    for seed in range(6):
        frame, _ = env.reset(seed=seed)
        cue = env._cue
        band = frame[:42, 8:-8].mean() > frame[42:, 8:-8].mean()
        assert (0 if band else 1) == cue  # the cue is visible on the first frame only
        for _ in range(3):
            frame, reward, terminated, _, _ = env.step(0)
            assert reward == 0 and not terminated
            assert frame[:, 8:-8].max() < 255  # corridor frames hide the cue
        frame, reward, terminated, _, _ = env.step(0)
        assert not terminated
        _, reward, terminated, _, info = env.step(cue)
        assert terminated and reward == 1.0 and info["success"]


@pytest.mark.parametrize("mode", ["serial", "threads"])
def test_batched_env_steps_all_lanes(mode):
    env = make_batched_env(describe("MemoryCorridor"), 3, seed=0, mode=mode, **lane_options())
    time_step = env.reset()
    assert time_step.observation.shape == (3, 84, 84)
    time_step = env.step(np.zeros(3, np.int32))
    assert time_step.reward.shape == (3,)
    env.close()
    with pytest.raises(ValueError, match="parallel mode"):
        make_batched_env(describe("MemoryCorridor"), 2, seed=0, mode="gpu", **lane_options())


def test_memory_task_is_registered_with_gymnasium():
    import gymnasium as gym

    from rise_runtime.envs.memory_task import GAME_NAME, env_id_of
    ENV_ID = env_id_of(GAME_NAME)

    env = gym.make(ENV_ID, corridor_length=3)
    frame, _ = env.reset(seed=0)
    assert frame.shape == (84, 84) and env.action_space.n == 2


def test_memory_task_follows_the_frame_size():
    env = MemoryCorridorEnv(corridor_length=3, num_cues=2, cue_steps=1, distractor_prob=0.0, frame_size=42)
    frame, _ = env.reset(seed=0)
    assert frame.shape == (42, 42) and frame.max() == 255  # the cue band, scaled down
    lane = make_frame_env(describe("MemoryCorridor"), seed=0, **lane_options(frame_size=48))
    assert lane.observation_spec().shape == (48, 48)


def test_shipped_envs_pass_gymnasium_check_env():
    """reset(seed=...) seeds gymnasium's np_random, so the same seed gives the same episode."""
    from gymnasium.utils.env_checker import check_env

    from rise_runtime.envs.atari import AtariEnv

    for env in (MemoryCorridorEnv(corridor_length=3, num_cues=2, cue_steps=1, distractor_prob=0.0, frame_size=84),
                AtariEnv("Pong", atari_settings(max_episode_frames=2_000))):
        check_env(env, skip_render_check=True)
        first, _ = env.reset(seed=11)
        again, _ = env.reset(seed=11)
        np.testing.assert_array_equal(first, again)
        env.close()


def test_memory_task_is_registered_by_a_string_entry_point():
    import gymnasium as gym

    from rise_runtime.envs.memory_task import GAME_NAME, env_id_of
    ENV_ID = env_id_of(GAME_NAME)

    assert gym.spec(ENV_ID).entry_point == "rise_runtime.envs.memory_task:MemoryCorridorEnv"
