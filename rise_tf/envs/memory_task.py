"""MemoryCorridor: a small image POMDP that frame stacking cannot solve and memory can.

An episode: `cue_steps` frames show a cue (one of `num_cues` bright bands), then `corridor_length`
frames of a corridor that carry no cue information, then one decision frame. The action taken on
the decision frame is rewarded +1 when it names the cue and -1 otherwise; every other action is
ignored (reward 0). With `corridor_length` >= the frame stack, a frame-stacking agent cannot see the
cue when it decides and stays at chance (1 / num_cues); an agent whose memory spans
cue_steps + corridor_length + 1 steps can be perfect. Frames are frame_size x frame_size uint8
(84 like Atari's by default), so the same networks and replay apply unchanged.

The STANDARD_* constants define the standard task; the run config and the gymnasium registration
take their defaults from them.
"""
from __future__ import annotations

from typing import Optional

import gymnasium as gym
import numpy as np

from rise_tf.envs.atari_preprocessing import PreprocessingConfig

GAME_NAME = "MemoryCorridor"  # the --game name of this task everywhere in rise-tf
ENV_ID = "rise_tf/MemoryCorridor-v0"
STANDARD_CORRIDOR_LENGTH = 8
STANDARD_NUM_CUES = 2
STANDARD_CUE_STEPS = 1


class MemoryCorridorEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, *, corridor_length: int, num_cues: int, cue_steps: int, frame_size: int,
                 seed: Optional[int] = None):
        if corridor_length < 1:
            raise ValueError(f"corridor_length must be >= 1, got {corridor_length}")
        if not 2 <= num_cues <= 6:
            raise ValueError(f"num_cues must be between 2 and 6, got {num_cues}")
        if cue_steps < 1:
            raise ValueError(f"cue_steps must be >= 1, got {cue_steps}")
        if frame_size < 2 * num_cues or frame_size < 24:
            raise ValueError(f"frame_size must be >= 24 (and >= 2 x num_cues), got {frame_size}")
        self.frame_size = frame_size
        self.corridor_length = corridor_length
        self.num_cues = num_cues
        self.cue_steps = cue_steps
        self.episode_steps = cue_steps + corridor_length + 1
        self.observation_space = gym.spaces.Box(0, 255, (frame_size, frame_size), np.uint8)
        self.action_space = gym.spaces.Discrete(num_cues)
        self.action_meanings = [f"CHOOSE_{i}" for i in range(num_cues)]
        if seed is not None:
            self.np_random = np.random.default_rng(seed)  # the stream gymnasium's reset(seed=seed) makes
        self._cue = 0
        self._t = 0

    def _frame(self) -> np.ndarray:
        size = self.frame_size

        def px(at_84: int) -> int:  # positions are laid out on an 84-pixel frame and scaled
            return max(1, at_84 * size // 84)

        frame = np.zeros((size, size), np.uint8)
        frame[:, :px(2)] = frame[:, -px(2):] = 96  # corridor walls, shown in every frame
        if self._t < self.cue_steps:
            band = size // self.num_cues
            frame[self._cue * band:(self._cue + 1) * band, px(8):-px(8)] = 255
        elif self._t < self.cue_steps + self.corridor_length:
            # A moving floor marker: the frames change, but never reveal the cue.
            row = px(10) + (self._t - self.cue_steps) * px(60) // max(self.corridor_length, 1)
            frame[row:row + px(4), px(30):px(54)] = 160
        else:
            frame[::px(6), :] = 200  # decision frame: horizontal stripes
        return frame

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)  # seeds self.np_random when a seed is given (gymnasium's contract)
        self._cue = int(self.np_random.integers(self.num_cues))
        self._t = 0
        return self._frame(), {"life_lost": False}

    def step(self, action):
        deciding = self._t == self.episode_steps - 1
        reward = 0.0
        info = {"life_lost": False}
        if deciding:
            success = int(action) == self._cue
            reward = 1.0 if success else -1.0
            info["success"] = success
        self._t += 1
        return self._frame(), reward, deciding, False, info

    def render(self):
        return np.repeat(self._frame()[:, :, None], 3, axis=2)


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point="rise_tf.envs.memory_task:MemoryCorridorEnv",
                     kwargs=dict(corridor_length=STANDARD_CORRIDOR_LENGTH, num_cues=STANDARD_NUM_CUES,
                                 cue_steps=STANDARD_CUE_STEPS, frame_size=PreprocessingConfig.frame_size))


register()
