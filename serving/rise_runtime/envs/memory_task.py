"""MemoryCorridor: a small image POMDP that frame stacking cannot solve and memory can.

An episode: `cue_steps` frames show a cue (one of `num_cues` bright bands), then `corridor_length`
frames of a corridor that carry no cue information, then one decision frame. The action taken on
the decision frame is rewarded +1 when it names the cue and -1 otherwise; every other action is
ignored (reward 0). With `corridor_length` >= the frame stack, a frame-stacking agent cannot see the
cue when it decides and stays at chance (1 / num_cues); an agent whose memory spans
cue_steps + corridor_length + 1 steps can be perfect. Frames are frame_size x frame_size uint8
(84 like Atari's by default), so the same networks and replay apply unchanged.

Distractor frames (distractor_prob > 0): a corridor frame shows, with that probability, a band
exactly like a cue at a random position. Only the band on a frame without the floor marker (the
first `cue_steps` frames) is the cue, so an agent must remember *which* band came first, not the
latest one it saw.

The STANDARD_* constants define the standard task; the run config and the gymnasium registration
take their defaults from them. `MEMORY_TASKS` names the harder variants (each registered with
gymnasium as rise_tf/<name>-v0 and accepted as a `--game` name). With the default window k = 16,
the cue is in RISE's window at the decision when cue_steps + corridor_length <= k - 1 — the
BeyondWindow variant (corridor 24) is past that on purpose, to show the window's limit honestly.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import gymnasium as gym
import numpy as np

from rise_runtime.preprocessing import PreprocessingConfig

GAME_NAME = "MemoryCorridor"  # the --game name of this task everywhere in rise-tf
STANDARD_CORRIDOR_LENGTH = 8
STANDARD_NUM_CUES = 2
STANDARD_CUE_STEPS = 1
STANDARD_DISTRACTOR_PROB = 0.0
CUE_BRIGHTNESS = 255
SOLVED_SUCCESS = 0.95  # a task is "solved" once a greedy evaluation reaches this success rate



@dataclasses.dataclass(frozen=True, kw_only=True)
class MemoryTaskSettings:
    corridor_length: int  # corridor frames between the cue and the decision
    num_cues: int  # = actions; chance is 1 / num_cues
    cue_steps: int  # frames the cue is shown
    distractor_prob: float  # chance a corridor frame shows a cue-like band


# --game name -> the task. The standard task first; each variant changes what its name says.
MEMORY_TASKS = {
    GAME_NAME: MemoryTaskSettings(corridor_length=STANDARD_CORRIDOR_LENGTH, num_cues=STANDARD_NUM_CUES,
                                  cue_steps=STANDARD_CUE_STEPS, distractor_prob=STANDARD_DISTRACTOR_PROB),
    # The cue 15 steps before the decision: the farthest a k = 16 window still holds.
    "MemoryCorridorLong": MemoryTaskSettings(corridor_length=14, num_cues=2, cue_steps=1, distractor_prob=0.0),
    # Four cues (= four actions): chance is 25 %.
    "MemoryCorridorCues4": MemoryTaskSettings(corridor_length=8, num_cues=4, cue_steps=1, distractor_prob=0.0),
    # Cue-like bands in a third of the corridor frames; only the first band counts.
    "MemoryCorridorDistractors": MemoryTaskSettings(corridor_length=8, num_cues=2, cue_steps=1, distractor_prob=1 / 3),
    # All three at once.
    "MemoryCorridorHard": MemoryTaskSettings(corridor_length=14, num_cues=4, cue_steps=1, distractor_prob=1 / 3),
    # The cue 25 steps back: outside a k = 16 window (RISE and the full-recurrent model should fail).
    "MemoryCorridorBeyondWindow": MemoryTaskSettings(corridor_length=24, num_cues=2, cue_steps=1,
                                                     distractor_prob=0.0),
}


def is_memory_task(game: str) -> bool:
    return game in MEMORY_TASKS


def env_id_of(task: str) -> str:
    return f"rise_tf/{task}-v0"


class MemoryCorridorEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, *, corridor_length: int, num_cues: int, cue_steps: int, distractor_prob: float,
                 frame_size: int, seed: Optional[int] = None):
        if corridor_length < 1:
            raise ValueError(f"corridor_length must be >= 1, got {corridor_length}")
        if not 2 <= num_cues <= 6:
            raise ValueError(f"num_cues must be between 2 and 6, got {num_cues}")
        if cue_steps < 1:
            raise ValueError(f"cue_steps must be >= 1, got {cue_steps}")
        if not 0.0 <= distractor_prob < 1.0:
            raise ValueError(f"distractor_prob must be in [0, 1), got {distractor_prob}")
        if frame_size < 2 * num_cues or frame_size < 24:
            raise ValueError(f"frame_size must be >= 24 (and >= 2 x num_cues), got {frame_size}")
        self.frame_size = frame_size
        self.corridor_length = corridor_length
        self.num_cues = num_cues
        self.cue_steps = cue_steps
        self.distractor_prob = distractor_prob
        self.episode_steps = cue_steps + corridor_length + 1
        self.observation_space = gym.spaces.Box(0, 255, (frame_size, frame_size), np.uint8)
        self.action_space = gym.spaces.Discrete(num_cues)
        self.action_meanings = [f"CHOOSE_{i}" for i in range(num_cues)]
        if seed is not None:
            self.np_random = np.random.default_rng(seed)  # the stream gymnasium's reset(seed=seed) makes
        self._cue = 0
        self._distractor = -1  # band shown on the current corridor frame, -1 = none
        self._t = 0

    def _frame(self) -> np.ndarray:
        size = self.frame_size

        def px(at_84: int) -> int:  # positions are laid out on an 84-pixel frame and scaled
            return max(1, at_84 * size // 84)

        frame = np.zeros((size, size), np.uint8)
        frame[:, :px(2)] = frame[:, -px(2):] = 96  # corridor walls, shown in every frame
        band = size // self.num_cues
        if self._t < self.cue_steps:
            frame[self._cue * band:(self._cue + 1) * band, px(8):-px(8)] = CUE_BRIGHTNESS
        elif self._t < self.cue_steps + self.corridor_length:
            if self._distractor >= 0:  # drawn first: the floor marker stays visible on top of it
                frame[self._distractor * band:(self._distractor + 1) * band, px(8):-px(8)] = CUE_BRIGHTNESS
            # A moving floor marker: the frames change, but never reveal the cue.
            row = px(10) + (self._t - self.cue_steps) * px(60) // max(self.corridor_length, 1)
            frame[row:row + px(4), px(30):px(54)] = 160
        else:
            frame[::px(6), :] = 200  # decision frame: horizontal stripes
        return frame

    def frames_with_cue(self, cue: int) -> np.ndarray:
        """[episode_steps, H, W]: one episode's frames with this cue and no distractors, as the env draws
        them (for diagnostics); the env's own episode is left as it was."""
        if not 0 <= cue < self.num_cues:
            raise ValueError(f"cue must be in 0..{self.num_cues - 1}, got {cue}")
        saved = self._cue, self._t, self._distractor
        try:
            self._cue, self._distractor = cue, -1
            frames = []
            for t in range(self.episode_steps):
                self._t = t
                frames.append(self._frame())
            return np.stack(frames)
        finally:
            self._cue, self._t, self._distractor = saved

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)  # seeds self.np_random when a seed is given (gymnasium's contract)
        self._cue = int(self.np_random.integers(self.num_cues))
        self._t = 0
        self._distractor = -1
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
        self._distractor = -1
        # Drawn only when distractors are on, so the standard task keeps its RNG stream.
        if self.distractor_prob > 0 and self.cue_steps <= self._t < self.cue_steps + self.corridor_length:
            if self.np_random.random() < self.distractor_prob:
                self._distractor = int(self.np_random.integers(self.num_cues))
        return self._frame(), reward, deciding, False, info

    def render(self):
        return np.repeat(self._frame()[:, :, None], 3, axis=2)

    def observed_screens(self):
        """(last, previous) screens as a player loop reads them (rise-play): the frame itself, which the
        shared preprocessing passes through unchanged at frame_size."""
        return self._frame(), None


def register() -> None:
    """Registers every task in MEMORY_TASKS as rise_tf/<name>-v0 (84x84 frames)."""
    for task, settings in MEMORY_TASKS.items():
        if env_id_of(task) not in gym.registry:
            gym.register(env_id_of(task), entry_point="rise_runtime.envs.memory_task:MemoryCorridorEnv",
                         kwargs=dict(dataclasses.asdict(settings), frame_size=PreprocessingConfig.frame_size))


register()
