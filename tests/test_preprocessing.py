import numpy as np
import pytest

from rise_tf.envs.atari import AtariEnv
from rise_tf.envs.atari_preprocessing import PreprocessingConfig, preprocess_screens

from conftest import atari_settings  # noqa: E402


def test_output_shape_dtype_and_range():
    rng = np.random.default_rng(0)
    screen = rng.integers(0, 256, (210, 160, 3), dtype=np.uint8)
    frame = preprocess_screens(screen, screen)
    assert frame.shape == (84, 84) and frame.dtype == np.uint8
    assert preprocess_screens(screen, config=PreprocessingConfig(frame_size=64)).shape == (64, 64)


def test_max_pool_over_last_two_screens_keeps_flickering_sprites():
    dark = np.zeros((210, 160, 3), np.uint8)
    sprite = dark.copy()
    sprite[100:120, 80:100] = 255  # white sprite visible in one of the two screens only
    pooled = preprocess_screens(dark, sprite)
    assert pooled.max() == 255  # area interpolation over a fully white 20x20 block keeps white cells
    assert preprocess_screens(dark, None).max() == 0
    no_pool = PreprocessingConfig(max_pool_last_two=False)
    assert preprocess_screens(dark, sprite, no_pool).max() == 0


def test_uniform_grey_maps_to_its_luma():
    screen = np.full((210, 160, 3), (200, 100, 50), np.uint8)
    # ITU-R 601: 0.299 R + 0.587 G + 0.114 B = 59.8 + 58.7 + 5.7 = 124.2 -> 124
    assert np.all(preprocess_screens(screen) == 124)


@pytest.mark.parametrize("bad, error", [
    (np.zeros((210, 160, 4), np.uint8), ValueError),
    (np.zeros((210, 160, 3), np.float32), TypeError),
    ([[0]], TypeError),
])
def test_bad_screens_are_rejected_with_a_clear_error(bad, error):
    with pytest.raises(error, match="last_screen"):
        preprocess_screens(bad)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="interpolation"):
        PreprocessingConfig(interpolation="cubic-ish")
    with pytest.raises(ValueError, match="action_repeat"):
        PreprocessingConfig(action_repeat=0)


def test_env_frames_equal_preprocessing_of_recorded_raw_screens():
    """Parity on recorded frames: what the env emits is exactly the shared function of its screens."""
    env = AtariEnv("Breakout", atari_settings(noop_max=5), seed=3)
    frame, _ = env.reset()
    rng = np.random.default_rng(0)
    for step in range(60):
        np.testing.assert_array_equal(frame, preprocess_screens(env.last_screen, env.previous_screen))
        frame, *_ = env.step(int(rng.integers(env.action_space.n)))
    env.close()
