"""The one definition of Atari frame preprocessing, shared by training and serving.

TensorFlow-free on purpose (numpy + OpenCV only): the real-time runner imports this module so that
a deployed policy sees exactly the pixels it was trained on. A test proves the parity.

Pipeline for one agent step (Mnih et al. 2015, Machado et al. 2018):
    the last two raw RGB screens of an action repeat -> pixel-wise max (removes sprite flicker)
    -> grayscale (ITU-R 601 luma, OpenCV's RGB2GRAY) -> resize to 84x84 with area interpolation.
Screens may also be grayscale already ([H, W] or [H, W, 1], from other gymnasium envs): the same
pipeline then skips the colour conversion.
Deviation: the DQN paper took the luminance channel via its own rescale; ALE's built-in grayscale
palette differs by a grey level or two. We convert RGB ourselves so a runner that only has RGB
screens reproduces training exactly.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import cv2
import numpy as np

RAW_SCREEN_SHAPE = (210, 160, 3)  # ALE's native RGB screen, [H, W, C]


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """Parameters of the frame pipeline; written into checkpoints and exported models."""

    frame_size: int = 84  # output frames are frame_size x frame_size
    action_repeat: int = 4  # emulator frames per agent step
    max_pool_last_two: bool = True  # max over the last two raw screens of each repeat
    interpolation: str = "area"  # OpenCV resize interpolation: area | linear | nearest

    def __post_init__(self):
        if self.frame_size < 8:
            raise ValueError(f"frame_size must be >= 8, got {self.frame_size}")
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {self.action_repeat}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"unknown interpolation {self.interpolation!r}; choose one of {sorted(_INTERPOLATIONS)}"
            )

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "PreprocessingConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown preprocessing keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def _check_screen(screen: np.ndarray, name: str) -> None:
    if not isinstance(screen, np.ndarray) or screen.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 numpy array, got {type(screen).__name__} "
                        f"{getattr(screen, 'dtype', '')}")
    if not (screen.ndim == 2 or (screen.ndim == 3 and screen.shape[2] in (1, 3))):
        raise ValueError(f"{name} must be an RGB image shaped [H, W, 3] or a grayscale one shaped [H, W] or "
                         f"[H, W, 1], got shape {screen.shape}")


def preprocess_screens(
    last_screen: np.ndarray,
    previous_screen: Optional[np.ndarray] = None,
    config: PreprocessingConfig = PreprocessingConfig(),
) -> np.ndarray:
    """Turns the last (and second-to-last) raw RGB screen of an agent step into one frame.

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
    gray = cv2.cvtColor(screen, cv2.COLOR_RGB2GRAY) if screen.ndim == 3 and screen.shape[2] == 3 else (
        screen.reshape(screen.shape[:2]))
    return cv2.resize(
        gray, (config.frame_size, config.frame_size), interpolation=_INTERPOLATIONS[config.interpolation]
    )
