"""MemoryCorridor: a small image POMDP that frame stacking cannot solve and memory can.

An episode: `cue_steps` frames show a cue (one of `num_cues` bright bands), then `corridor_length`
frames of a corridor that carry no cue information, then one decision frame. The action taken on
the decision frame is rewarded +1 when it names the cue and -1 otherwise; every other action is
ignored (reward 0). With `corridor_length` >= the frame stack, a frame-stacking agent cannot see the
cue when it decides and stays at chance (1 / num_cues); an agent whose memory spans
cue_steps + corridor_length + 1 steps can be perfect. Frames are 84x84 uint8 like Atari's, so the
same networks and replay apply unchanged.
"""
from __future__ import annotations

from typing import Optional

import gymnasium as gym
import numpy as np

GAME_NAME = "MemoryCorridor"  # the --game name of this task everywhere in rise-tf
ENV_ID = "rise_tf/MemoryCorridor-v0"
FRAME_SIZE = 84


class MemoryCorridorEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, corridor_length: int = 8, num_cues: int = 2, cue_steps: int = 1,
                 seed: Optional[int] = None):
        if corridor_length < 1:
            raise ValueError(f"corridor_length must be >= 1, got {corridor_length}")
        if not 2 <= num_cues <= 6:
            raise ValueError(f"num_cues must be between 2 and 6, got {num_cues}")
        if cue_steps < 1:
            raise ValueError(f"cue_steps must be >= 1, got {cue_steps}")
        self.corridor_length = corridor_length
        self.num_cues = num_cues
        self.cue_steps = cue_steps
        self.episode_steps = cue_steps + corridor_length + 1
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE), np.uint8)
        self.action_space = gym.spaces.Discrete(num_cues)
        self.action_meanings = [f"CHOOSE_{i}" for i in range(num_cues)]
        self._rng = np.random.default_rng(seed)
        self._cue = 0
        self._t = 0

    def _frame(self) -> np.ndarray:
        frame = np.zeros((FRAME_SIZE, FRAME_SIZE), np.uint8)
        frame[:, :2] = frame[:, -2:] = 96  # corridor walls, shown in every frame
        if self._t < self.cue_steps:
            band = FRAME_SIZE // self.num_cues
            frame[self._cue * band:(self._cue + 1) * band, 8:-8] = 255
        elif self._t < self.cue_steps + self.corridor_length:
            # A moving floor marker: the frames change, but never reveal the cue.
            row = 10 + (self._t - self.cue_steps) * 60 // max(self.corridor_length, 1)
            frame[row:row + 4, 30:54] = 160
        else:
            frame[::6, :] = 200  # decision frame: horizontal stripes
        return frame

    def reset(self, *, seed: Optional[int] = None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._cue = int(self._rng.integers(self.num_cues))
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
        gym.register(ENV_ID, entry_point=MemoryCorridorEnv)


register()
