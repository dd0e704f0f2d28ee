"""ale-py's native AtariVectorEnv (C++ threads) against our AtariEnv: asked for RGB screens at native
size, with its own 4-frame skip and max-pool, and then given our grayscale/resize, it gives the same
frames, rewards and terminations for the same actions (the game-over screen itself excepted). This is the evidence a vectorized collector may rest on.
No-op starts and sticky actions are off on both sides: their random draws come from different RNGs.
"""
import numpy as np
import pytest
from ale_py.vector_env import AtariVectorEnv

from rise_runtime.envs.atari import AtariEnv, AtariSettings
from rise_runtime.preprocessing import PreprocessingConfig, resize, to_gray
from conftest import describe, lane_options


@pytest.mark.parametrize("game", ["Pong", "Breakout"])
def test_native_vector_env_frames_equal_our_preprocessing(game):
    config = PreprocessingConfig()
    ours = AtariEnv(game, AtariSettings(sticky_action_prob=0.0, noop_max=0, max_episode_frames=108_000,
                                        preprocessing=config, flicker_prob=0.0), seed=0)
    frame, _ = ours.reset()
    vector = AtariVectorEnv(game.lower(), 1, img_height=210, img_width=160, grayscale=False, stack_num=1,
                            frameskip=config.action_repeat, maxpool=True, noop_max=0, reward_clipping=False,
                            use_fire_reset=False, repeat_action_probability=0.0, num_threads=1)
    screens, _ = vector.reset(seed=0)

    def vector_frame(batch):
        return resize(to_gray(np.asarray(batch)[0, 0]), config)

    np.testing.assert_array_equal(vector_frame(screens), frame)
    rng = np.random.default_rng(1)
    for step in range(200):
        action = int(rng.integers(ours.action_space.n))
        frame, reward, terminated, _, _ = ours.step(action)
        screens, vector_reward, vector_terminated, _, _ = vector.step(np.array([action]))
        assert float(vector_reward[0]) == reward and bool(vector_terminated[0]) == terminated
        if terminated:
            # The game-over screen differs (ALE's skip and ours stop at different frames of the repeat);
            # it is a LAST row, never a learning input, since the discount into it is 0.
            assert step > 100  # Breakout ends here after 187 steps: the comparison above covered them
            break
        np.testing.assert_array_equal(vector_frame(screens), frame, err_msg=f"step {step}")
    ours.close()
    vector.close()


def test_vector_lanes_give_the_training_envs_time_steps():
    """`--parallel vector` against `--parallel serial`, as the trainer sees them: the same frames,
    rewards, step types and discounts (life losses as zero discounts, a truncation at the frame cap,
    then each lane's next episode), for the same actions on 3 Breakout lanes. The one exception is the
    screen of an episode's LAST step, which ALE takes from another frame of the repeat (a few dozen
    pixels differ); vector_atari.py names it as a deviation."""
    from rise_tf.envs.py_env import make_batched_env
    from rise_tf.envs.vector_atari import AtariVectorPyEnvironment

    breakout = describe("Breakout", sticky_action_prob=0.0, noop_max=0, max_episode_frames=240)
    lanes = lane_options(terminal_on_life_loss=True)
    serial = make_batched_env(breakout, 3, 7, "serial", **lanes)
    vector = make_batched_env(breakout, 3, 7, "vector", **lanes)
    assert isinstance(vector, AtariVectorPyEnvironment) and vector.batch_size == 3
    assert vector.envs[0].action_meanings == serial.envs[0].action_meanings
    assert vector.time_step_spec() == serial.time_step_spec()
    expected, got = serial.reset(), vector.reset()
    rng = np.random.default_rng(3)
    kinds = set()
    for step in range(130):  # two whole 60-step episodes per lane, and the start of a third
        for field in ("step_type", "reward", "discount"):
            np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), err_msg=f"{field}, step {step}")
        not_last = expected.step_type != 2
        np.testing.assert_array_equal(got.observation[not_last], expected.observation[not_last], err_msg=f"step {step}")
        assert (got.observation != expected.observation).sum() < 200  # LAST screens: a few dozen pixels
        kinds.update(zip(expected.step_type.tolist(), expected.discount.tolist()))
        actions = rng.integers(0, serial.action_spec().maximum + 1, 3).astype(np.int32)
        expected, got = serial.step(actions), vector.step(actions)
    # it covered FIRST, MID, a life loss (MID, discount 0) and a truncation (LAST, discount 1)
    assert {(0, 1.0), (1, 1.0), (1, 0.0), (2, 1.0)} <= kinds
    serial.close()
    vector.close()


def test_vector_lanes_refuse_what_they_cannot_step():
    from rise_tf.envs.py_env import make_batched_env
    from rise_tf.config import make_config

    with pytest.raises(ValueError, match="Atari games only"):
        make_config("rise-dqn", "MemoryCorridor", env={"parallel": "vector"})
    with pytest.raises(ValueError, match="Atari games only"):
        make_batched_env(describe("MemoryCorridor"), 2, 0, "vector", **lane_options())


def test_vector_lanes_flicker_like_the_single_envs():
    """--flicker on vector lanes: each observed frame is blanked (all zeros) with the probability
    given, drawn per lane, and a real Pong frame is never all zeros."""
    from rise_tf.envs.py_env import make_batched_env

    env = make_batched_env(describe("Pong", flicker=0.5), 4, 0, "vector", **lane_options())
    blank = [(env.reset().observation.reshape(4, -1).max(axis=1) == 0)]
    for _ in range(150):
        blank.append(env.step(np.zeros(4, np.int32)).observation.reshape(4, -1).max(axis=1) == 0)
    env.close()
    blank = np.array(blank)  # [steps, lanes]
    assert 0.4 < blank.mean() < 0.6  # 604 draws: 0.5 ± 0.1 is > 4 standard deviations
    assert all(0.3 < rate < 0.7 for rate in blank.mean(axis=0))  # every lane flickers
