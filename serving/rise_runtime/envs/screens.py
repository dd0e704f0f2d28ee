"""What every pixel environment of rise-tf shares: the last two raw screens, the observed frame made
from them by the one preprocessing, and flicker.

Flicker (Hausknecht & Stone 2015, DRQN's "flickering Pong"): at every agent step the screen is
either fully shown or, with probability `flicker_prob`, fully blanked (all zeros). `observed_screens`
is what the agent sees, so training, evaluation and the runtime's play loop (which passes these
screens to the exported model) blank exactly the same steps for the same seed. Recordings keep the
real screen. The draw comes from the env's own `np_random` and only when flicker is on, so a run
without flicker keeps its RNG stream.

TF-free: the TensorFlow-free play loop uses these environments.
"""
from __future__ import annotations

from typing import Tuple

import gymnasium as gym
import numpy as np

from rise_runtime.preprocessing import PreprocessingConfig, preprocess_screens


def check_flicker(flicker_prob: float) -> None:
    if not 0.0 <= flicker_prob < 1.0:
        raise ValueError(f"flicker probability must be in [0, 1) (0 = off; DRQN used 0.5), got {flicker_prob}")


class ScreenEnv(gym.Env):
    """Base of the pixel envs: keeps [previous, last] raw screens and turns them into frames."""

    metadata = {"render_modes": ["rgb_array"]}

    def _init_screens(self, screen_shape: Tuple[int, ...], preprocessing: PreprocessingConfig,
                      flicker_prob: float) -> None:
        check_flicker(flicker_prob)
        self.preprocessing = preprocessing
        self.flicker_prob = flicker_prob
        self._screens = np.zeros((2,) + tuple(screen_shape), np.uint8)  # [previous, last]
        self._blank_screens = np.zeros_like(self._screens)
        self._blanked = False
        size = preprocessing.frame_size
        self.observation_space = gym.spaces.Box(0, 255, (size, size), np.uint8)

    @property
    def last_screen(self) -> np.ndarray:
        """The latest raw screen (for recording and for preprocessing-parity tests)."""
        return self._screens[1]

    @property
    def previous_screen(self) -> np.ndarray:
        return self._screens[0]

    @property
    def blanked(self) -> bool:
        """True when flicker hides the current step's screen."""
        return self._blanked

    def observed_screens(self) -> Tuple[np.ndarray, np.ndarray]:
        """(last, previous) screens as the agent sees them: blank on a flickered step."""
        screens = self._blank_screens if self._blanked else self._screens
        return screens[1], screens[0]

    def _draw_flicker(self) -> None:
        """Called once per observation (reset and every step)."""
        self._blanked = bool(self.flicker_prob > 0 and self.np_random.random() < self.flicker_prob)

    def _frame(self) -> np.ndarray:
        last, previous = self.observed_screens()
        return preprocess_screens(last, previous, self.preprocessing)

    def render(self):
        screen = self._screens[1]
        return np.repeat(screen.reshape(screen.shape[:2] + (1,)), 3, axis=2) if screen.ndim == 2 or \
            screen.shape[2] == 1 else screen.copy()
