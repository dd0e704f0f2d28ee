import math
import sys

import numpy as np
import pytest

from rise_runtime.envs.atari import AtariEnv
from rise_runtime.preprocessing import PreprocessingConfig, preprocess_screens, to_gray

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


# --- numpy path vs OpenCV, bit for bit (the runtime's base install has no OpenCV) -------------------

PARITY_GAMES = ("Pong", "Breakout", "MsPacman", "Seaquest", "Qbert", "Boxing")


def _opencv_frame(screen, previous, config):
    import cv2

    merged = screen if previous is None else np.maximum(screen, previous)
    gray = cv2.cvtColor(merged, cv2.COLOR_RGB2GRAY) if merged.ndim == 3 and merged.shape[2] == 3 else (
        merged.reshape(merged.shape[:2]))
    flags = {"area": cv2.INTER_AREA, "nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR}
    return cv2.resize(gray, (config.frame_size, config.frame_size), interpolation=flags[config.interpolation])


def _atari_screen_pairs(per_game=60):
    for game in PARITY_GAMES:
        env = AtariEnv(game, atari_settings(noop_max=0), seed=11)
        env.reset()
        rng = np.random.default_rng(0)
        for _ in range(per_game):
            env.step(int(rng.integers(env.action_space.n)))
            yield env.last_screen, env.previous_screen
        env.close()


@pytest.mark.parametrize("interpolation", ["area", "nearest", "linear"])
def test_numpy_preprocessing_equals_opencv_on_real_atari_screens(interpolation):
    config = PreprocessingConfig(interpolation=interpolation)
    count = 0
    for screen, previous in _atari_screen_pairs():
        np.testing.assert_array_equal(preprocess_screens(screen, previous, config),
                                      _opencv_frame(screen, previous, config))
        count += 1
    assert count == 60 * len(PARITY_GAMES)


# Shrinking by fractional factors, whole factors (2x2 has its own rounding), mixed, odd sizes, a
# copy at equal size; gray and RGB inputs; random pixels (every rounding case) and coarse ones (ties).
PARITY_SHAPES = [(210, 160, 3), (250, 160, 3), (96, 96, 3), (85, 200, 3), (168, 168, 3), (252, 168, 3),
                 (336, 84, 3), (100, 300), (84, 84, 1), (211, 161)]


@pytest.mark.parametrize("shape", PARITY_SHAPES, ids=lambda shape: "x".join(map(str, shape)))
@pytest.mark.parametrize("frame_size", [84, 64])
def test_numpy_preprocessing_equals_opencv_on_synthetic_screens(shape, frame_size):
    rng = np.random.default_rng(sum(shape) + frame_size)
    for interpolation in ("area", "nearest", "linear"):
        config = PreprocessingConfig(frame_size=frame_size, interpolation=interpolation)
        if min(shape[:2]) < frame_size and interpolation != "nearest":
            continue  # enlarging: tested below
        for trial in range(12):
            screen = rng.integers(0, 256, shape, dtype=np.uint8)
            if trial % 2:
                screen = (screen // 85 * 85).astype(np.uint8)  # few levels: many exact .5 cases
            np.testing.assert_array_equal(preprocess_screens(screen, None, config),
                                          _opencv_frame(screen, None, config))


def test_luma_is_the_fixed_point_formula_of_the_contract():
    rng = np.random.default_rng(5)
    screen = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    red, green, blue = (screen[..., c].astype(np.int64) for c in range(3))
    expected = (9798 * red + 19235 * green + 3735 * blue + 16384) >> 15
    np.testing.assert_array_equal(to_gray(screen), expected)


def _bilinear_from_the_contract(gray, size, area_mode):
    """docs/model-contract.md's fixed-point bilinear, pixel by pixel in plain Python integers."""
    def axis(n):
        table = []
        for d in range(size):
            if area_mode:
                left = math.floor(d * (n / size))
                f = np.float32((d + 1) - (left + 1) * (size / n))
                f = np.float32(0) if f <= 0 else np.float32(f - math.floor(f))
            else:
                f = np.float32((d + 0.5) * (n / size) - 0.5)
                left = math.floor(f)
                f = np.float32(f - np.float32(left))
            if left < 0:
                left, f = 0, np.float32(0)
            edge = left + 1 >= n
            if left >= n - 1:
                left, f = n - 1, np.float32(0)
            w0 = int(np.rint(np.float32(1 - f) * np.float32(2048)))
            w1 = int(np.rint(f * np.float32(2048)))
            table.append((left, min(left + 1, n - 1), w0, w1, edge))
        return table

    height, width = gray.shape
    columns, rows = axis(width), axis(height)
    t = [[int(gray[y, a]) * 2048 if edge else int(gray[y, a]) * w0 + int(gray[y, b]) * w1
          for a, b, w0, w1, edge in columns] for y in range(height)]
    out = np.zeros((size, size), np.uint8)
    for r, (a, b, w0, w1, _) in enumerate(rows):
        for c in range(size):
            value = ((t[a][c] >> 4) * w0 >> 16) + ((t[b][c] >> 4) * w1 >> 16)
            out[r, c] = min(255, max(0, (value + 2) >> 2))
    return out


# Screens smaller than the frame on one or both axes, gray, RGB and [H, W, 1].
SMALL_SHAPES = [(64, 64, 3), (60, 60), (42, 42, 1), (7, 9), (50, 120, 3), (120, 50), (83, 85, 3), (30, 40)]


@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=lambda shape: "x".join(map(str, shape)))
def test_small_screens_resize_in_numpy_as_the_contract_writes_it(shape, monkeypatch):
    """No OpenCV in the runtime's path: the contract's fixed-point bilinear, written out above from
    the doc, is the runtime's bit for bit. OpenCV equals it for "area" when both axes enlarge; when
    "linear" enlarges, OpenCV's SIMD kernel differs by at most 1 grey level on a few pixels."""
    rng = np.random.default_rng(sum(shape))
    screen = rng.integers(0, 256, shape, dtype=np.uint8)
    gray = to_gray(screen) if screen.ndim == 3 and screen.shape[2] == 3 else screen.reshape(shape[:2])
    for interpolation, area_mode in (("area", True), ("linear", False)):
        config = PreprocessingConfig(interpolation=interpolation)
        frame = preprocess_screens(screen, None, config)
        np.testing.assert_array_equal(frame, _bilinear_from_the_contract(gray, 84, area_mode))
        opencv = _opencv_frame(screen, None, config).astype(int)
        if interpolation == "area" and max(shape[:2]) <= 84:
            np.testing.assert_array_equal(frame, opencv)
        else:
            assert np.abs(frame - opencv).max() <= 1 and np.mean(frame != opencv) < 0.1
    monkeypatch.setitem(sys.modules, "cv2", None)  # as in the runtime's base install: not needed
    preprocess_screens(screen, None, PreprocessingConfig(interpolation="linear"))


@pytest.mark.parametrize("height, width", [(87, 150), (108, 174), (144, 119), (183, 207), (210, 160)])
def test_nearest_as_the_contract_writes_it_equals_the_runtime_and_opencv(height, width):
    """docs/model-contract.md: out[r][c] = gray[min(floor(r·sy), H−1)][min(floor(c·sx), W−1)] with
    sy = 1/(S/H), sx = 1/(S/W) in double precision. (floor(r / (S/H)) differs at these sizes.)"""
    cv2 = pytest.importorskip("cv2")
    size = 84
    gray = np.random.default_rng(height * width).integers(0, 256, (height, width), dtype=np.uint8)
    sy, sx = 1.0 / (size / height), 1.0 / (size / width)
    doc = np.array([[gray[min(int(np.floor(r * sy)), height - 1), min(int(np.floor(c * sx)), width - 1)]
                     for c in range(size)] for r in range(size)], np.uint8)
    config = PreprocessingConfig(frame_size=size, interpolation="nearest")
    np.testing.assert_array_equal(preprocess_screens(gray, None, config), doc)
    np.testing.assert_array_equal(cv2.resize(gray, (size, size), interpolation=cv2.INTER_NEAREST), doc)
