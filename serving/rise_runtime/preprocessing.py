"""The one definition of frame preprocessing, shared by training (rise_tf) and every runtime.

numpy only: a game developer's install needs no OpenCV. The arithmetic reproduces OpenCV bit for
bit (the library rise-tf used before; tests compare both on thousands of Atari and random screens),
so models trained either way see identical pixels. Written to be re-implemented in any language:
docs/model-contract.md restates each step with its integer constants.

Pipeline for one agent step (Mnih et al. 2015, Machado et al. 2018):
    1. pixel-wise max of the last two raw screens of the action repeat (removes sprite flicker);
    2. grayscale, ITU-R 601 luma in 15-bit fixed point: (9798 R + 19235 G + 3735 B + 16384) >> 15;
    3. resize to frame_size x frame_size with area averaging ("area", the default), nearest neighbour or
       fixed-point bilinear ("linear", and "area" on screens smaller than the frame).
Screens may be grayscale already ([H, W] or [H, W, 1], from other gymnasium envs): step 2 is skipped.
Deviation: the DQN paper took the luminance channel via its own rescale; ALE's built-in grayscale
palette differs by a grey level or two. We convert RGB ourselves so a runner that only has RGB
screens reproduces training exactly.
Deviation: the fixed-point bilinear path is OpenCV's resize in its integer form (11-bit weights, the
vertical pass of its SIMD kernel), written out so that any language reproduces it. It equals OpenCV
4.10 (x86-64) when shrinking and for "area" on screens smaller than the frame on both axes; OpenCV
differs by 1 grey level on a few pixels when "linear" enlarges or "area" enlarges one axis and shrinks
the other (its kernels vary with the CPU's SIMD width there). Earlier rise-tf called OpenCV for these
cases, so a model trained then on such screens sees frames at most 1 level away.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Dict, Optional, Tuple

import numpy as np

RAW_SCREEN_SHAPE = (210, 160, 3)  # ALE's native RGB screen, [H, W, C]
INTERPOLATIONS = ("area", "linear", "nearest")
# ITU-R 601 luma weights scaled by 2**15 (they sum to 2**15), as OpenCV's RGB2GRAY for 8-bit images.
LUMA_WEIGHTS_Q15 = (9798, 19235, 3735)
LUMA_SHIFT = 15


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """Parameters of the frame pipeline; written into checkpoints and exported models."""

    frame_size: int = 84  # output frames are frame_size x frame_size
    action_repeat: int = 4  # emulator frames per agent step
    max_pool_last_two: bool = True  # max over the last two raw screens of each repeat
    interpolation: str = "area"  # area | linear | nearest (OpenCV's INTER_AREA / INTER_LINEAR / INTER_NEAREST)

    def __post_init__(self):
        if self.frame_size < 8:
            raise ValueError(f"frame_size must be >= 8, got {self.frame_size}")
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {self.action_repeat}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; choose one of {list(INTERPOLATIONS)}")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "PreprocessingConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown preprocessing keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


def _check_screen(screen: np.ndarray, name: str) -> None:
    if not isinstance(screen, np.ndarray) or screen.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 numpy array, got {type(screen).__name__} "
                        f"{getattr(screen, 'dtype', '')}")
    if not (screen.ndim == 2 or (screen.ndim == 3 and screen.shape[2] in (1, 3))):
        raise ValueError(f"{name} must be an RGB image shaped [H, W, 3] or a grayscale one shaped [H, W] or "
                         f"[H, W, 1], got shape {screen.shape}")
    if screen.shape[0] < 1 or screen.shape[1] < 1:
        raise ValueError(f"{name} is empty (shape {screen.shape})")


# Screen layouts engines hand over: channel count and where R, G, B sit (gray: one channel or none).
# OpenGL/Unity read-backs are RGBA and bottom-up; Direct3D/Unreal give BGRA.
SCREEN_LAYOUTS = {"rgb": (3, (0, 1, 2)), "bgr": (3, (2, 1, 0)), "rgba": (4, (0, 1, 2)), "bgra": (4, (2, 1, 0)),
                  "gray": (1, None)}


def standard_screen(screen: np.ndarray, layout: Optional[str] = None, bottom_up: bool = False) -> np.ndarray:
    """A screen in a declared layout as the pipeline's input: RGB [H, W, 3] or gray [H, W], top row
    first. Only rows are reordered and channels picked (alpha dropped): nothing is computed, so every
    layout gives the RGB path's frame bit for bit (docs/model-contract.md, "Screen layouts").
    layout None: RGB [H, W, 3] or gray [H, W] / [H, W, 1], told apart by the shape."""
    if layout is None:
        return screen[::-1] if bottom_up else screen
    if layout not in SCREEN_LAYOUTS:
        raise ValueError(f"unknown screen layout {layout!r}; choose one of {', '.join(SCREEN_LAYOUTS)}")
    if not isinstance(screen, np.ndarray) or screen.dtype != np.uint8:
        raise TypeError(f"the screen must be a uint8 numpy array, got {type(screen).__name__} "
                        f"{getattr(screen, 'dtype', '')}")
    channels, order = SCREEN_LAYOUTS[layout]
    if channels == 1:
        if not (screen.ndim == 2 or (screen.ndim == 3 and screen.shape[2] == 1)):
            raise ValueError(f"a gray screen is [H, W] or [H, W, 1], got shape {screen.shape}")
        screen = screen.reshape(screen.shape[:2])
    else:
        if screen.ndim != 3 or screen.shape[2] != channels:
            raise ValueError(f"a {layout} screen is [H, W, {channels}], got shape {screen.shape}")
        if layout != "rgb":
            screen = screen[:, :, list(order)]
    return screen[::-1] if bottom_up else screen


def to_gray(screen: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> uint8 luma [H, W] (gray input is returned as [H, W])."""
    if screen.ndim == 2 or screen.shape[2] == 1:
        return screen.reshape(screen.shape[:2])
    # One integer product over the channel axis: exact (the sum stays below 2**24), and about 4x faster
    # than three separate channel products.
    luma = screen.reshape(-1, 3).astype(np.uint32) @ _LUMA_WEIGHTS
    return ((luma + (1 << (LUMA_SHIFT - 1))) >> LUMA_SHIFT).astype(np.uint8).reshape(screen.shape[:2])


_LUMA_WEIGHTS = np.array(LUMA_WEIGHTS_Q15, np.uint32)


@functools.lru_cache(maxsize=64)
def _area_table(source: int, target: int) -> Tuple[np.ndarray, np.ndarray]:
    """For each output index along one axis: the source indices it covers and their float32 weights
    (the covered fraction of each source cell over the cell width), padded with zero weights.
    The same table, in the same order, as OpenCV's area resampling for a shrinking axis."""
    scale = 1.0 / (target / source)
    entries = []
    for out in range(target):
        start, end = out * scale, out * scale + scale
        width = min(scale, source - start)
        first, last = math.ceil(start), min(math.floor(end), source - 1)
        first = min(first, last)
        cells = []
        if first - start > 1e-3:
            cells.append((first - 1, (first - start) / width))
        cells += [(index, 1.0 / width) for index in range(first, last)]
        if end - last > 1e-3:
            cells.append((last, min(end - last, 1.0, width) / width))
        entries.append(cells)
    columns = max(len(cells) for cells in entries)
    indices = np.zeros((target, columns), np.int64)
    weights = np.zeros((target, columns), np.float32)
    for out, cells in enumerate(entries):
        for column, (index, weight) in enumerate(cells):
            indices[out, column], weights[out, column] = index, np.float32(weight)
    return indices, weights


def _area_shrink(gray: np.ndarray, size: int) -> np.ndarray:
    height, width = gray.shape
    factor_y, factor_x = height / size, width / size
    if factor_y.is_integer() and factor_x.is_integer():  # whole blocks: integer sums
        ky, kx = int(factor_y), int(factor_x)
        sums = gray.reshape(size, ky, size, kx).astype(np.int32).sum(axis=(1, 3))
        if ky == kx == 2:
            return ((sums + 2) >> 2).astype(np.uint8)
        scaled = sums.astype(np.float32) * np.float32(1.0 / (ky * kx))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    # Separable weighted sums in float32, in OpenCV's order: along each row first, then down columns.
    rows_index, rows_weight = _area_table(height, size)
    cols_index, cols_weight = _area_table(width, size)
    source = gray.astype(np.float32)
    across = source[:, cols_index[:, 0]] * cols_weight[:, 0]
    for column in range(1, cols_index.shape[1]):
        across += source[:, cols_index[:, column]] * cols_weight[:, column]
    out = across[rows_index[:, 0]] * rows_weight[:, 0:1]
    for column in range(1, rows_index.shape[1]):
        out += across[rows_index[:, column]] * rows_weight[:, column:column + 1]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _nearest(gray: np.ndarray, size: int) -> np.ndarray:
    height, width = gray.shape
    rows = np.minimum(np.floor(np.arange(size) * (1.0 / (size / height))).astype(np.int64), height - 1)
    cols = np.minimum(np.floor(np.arange(size) * (1.0 / (size / width))).astype(np.int64), width - 1)
    return gray[rows][:, cols]


# Bilinear weights in fixed point, as OpenCV's resize for uint8: INTER_RESIZE_COEF_BITS.
_COEF_BITS = 11
_COEF_ONE = 1 << _COEF_BITS


@functools.lru_cache(maxsize=64)
def _bilinear_table(source: int, target: int, area_mode: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output index along one axis: the left source index, the int32 weights of it and of
    its right neighbour (summing to 2048 up to rounding), and whether it lies at the right edge
    (then the left pixel alone, times 2048). area_mode: OpenCV's area coefficients for enlarging."""
    scale, inverse = source / target, target / source  # double precision
    lefts = np.zeros(target, np.int64)
    weights = np.zeros((target, 2), np.int32)
    edge = np.zeros(target, bool)
    for out in range(target):
        if area_mode:
            left = math.floor(out * scale)
            fraction = np.float32((out + 1) - (left + 1) * inverse)
            fraction = np.float32(0.0) if fraction <= 0 else np.float32(fraction - math.floor(fraction))
        else:
            fraction = np.float32((out + 0.5) * scale - 0.5)
            left = math.floor(fraction)
            fraction = np.float32(fraction - np.float32(left))
        if left < 0:
            left, fraction = 0, np.float32(0.0)
        if left + 1 >= source:
            edge[out] = True
            if left >= source - 1:
                left, fraction = source - 1, np.float32(0.0)
        lefts[out] = left
        weights[out] = (np.rint(np.float32(np.float32(1.0) - fraction) * np.float32(_COEF_ONE)),
                        np.rint(fraction * np.float32(_COEF_ONE)))
    return lefts, weights, edge


def _bilinear(gray: np.ndarray, size: int, area_mode: bool) -> np.ndarray:
    """Fixed-point bilinear resize (docs/model-contract.md spells out each integer step)."""
    height, width = gray.shape
    x_left, x_weight, x_edge = _bilinear_table(width, size, area_mode)
    y_top, y_weight, _ = _bilinear_table(height, size, area_mode)
    source = gray.astype(np.int32)
    rows = source[:, x_left] * x_weight[:, 0] + source[:, np.minimum(x_left + 1, width - 1)] * x_weight[:, 1]
    rows[:, x_edge] = source[:, x_left[x_edge]] * _COEF_ONE
    top = rows[y_top] >> 4  # at most 255 x 2048 >> 4 = 32640: fits int16, as in OpenCV's kernel
    bottom = rows[np.minimum(y_top + 1, height - 1)] >> 4
    value = ((top * y_weight[:, 0:1]) >> 16) + ((bottom * y_weight[:, 1:2]) >> 16)
    return np.clip((value + 2) >> 2, 0, 255).astype(np.uint8)


def resize(gray: np.ndarray, config: PreprocessingConfig) -> np.ndarray:
    """uint8 [H, W] -> uint8 [frame_size, frame_size]."""
    size = config.frame_size
    if gray.shape == (size, size):
        return gray.copy()
    if config.interpolation == "nearest":
        return _nearest(gray, size)
    if config.interpolation == "linear":
        return _bilinear(gray, size, area_mode=False)
    if min(gray.shape) < size:  # area on a screen smaller than the frame: OpenCV's area-mode bilinear
        return _bilinear(gray, size, area_mode=True)
    return _area_shrink(gray, size)


def preprocess_screens(
    last_screen: np.ndarray,
    previous_screen: Optional[np.ndarray] = None,
    config: PreprocessingConfig = PreprocessingConfig(),
) -> np.ndarray:
    """Turns the last (and second-to-last) raw screen of an agent step into one frame.

    Args:
      last_screen: uint8 [H, W, 3] (RGB) or [H, W] / [H, W, 1] (gray), the screen after the last
        emulator frame of the step.
      previous_screen: the screen one emulator frame earlier (same shape), or None (then no
        max-pooling, e.g. at reset or when the runner only has one screen).
      config: the pipeline parameters.
    Returns:
      uint8 [frame_size, frame_size] grayscale frame.
    """
    _check_screen(last_screen, "last_screen")
    screen = last_screen
    if config.max_pool_last_two and previous_screen is not None:
        _check_screen(previous_screen, "previous_screen")
        if previous_screen.shape != last_screen.shape:
            raise ValueError(f"screens differ in shape: {previous_screen.shape} vs {last_screen.shape}")
        screen = np.maximum(last_screen, previous_screen)
    return resize(to_gray(screen), config)
