"""Atari 2600 games (ALE v5 via gymnasium, ROMs bundled in ale-py) with our own preprocessing.

ALE runs with frameskip=1 and this module repeats the action itself, so the max over the last two
screens and the grayscale/resize come from `rise_runtime.preprocessing` (the one definition).

Protocol (Machado et al. 2018 + DQN conventions): sticky actions 0.25, up to 30 no-op starts,
episodes truncated at 108,000 emulator frames, minimal action set. Rewards are raw game points;
clipping happens in the learner so reported scores stay real.

Flicker (`AtariSettings.flicker_prob`, DRQN's flickering Atari) blanks whole observed screens; see
`screens.py`.

Deliberate deviation: an optional life loss is reported in `info["life_lost"]` and becomes a zero
discount for the learner (see `py_env.py`) instead of ending the episode, so the agent's frame stack
and memory carry across lives exactly as they do when the agent plays.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from typing import List, Optional

import gymnasium as gym
import numpy as np

from rise_runtime.preprocessing import RAW_SCREEN_SHAPE, PreprocessingConfig
from rise_runtime.envs.screens import ScreenEnv, check_flicker

_ALE_READY = False


def _ensure_ale_registered() -> None:
    global _ALE_READY
    if not _ALE_READY:
        import ale_py

        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on every env
        gym.register_envs(ale_py)
        _ALE_READY = True


def available_games() -> List[str]:
    """CamelCase names of every ALE v5 game, e.g. 'Pong', 'SpaceInvaders'."""
    _ensure_ale_registered()
    names = []
    for env_id in gym.registry:
        match = re.fullmatch(r"ALE/(\w+)-v5", env_id)
        if match:
            names.append(match.group(1))
    return sorted(names)


def _canonical(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def is_atari_game(name: str) -> bool:
    match = re.fullmatch(r"ALE/(\w+)-v\d+", name)
    wanted = match.group(1) if match else name
    return _canonical(wanted) in {_canonical(g) for g in available_games()}


def resolve_game(name: str) -> str:
    """Maps 'Pong', 'pong', 'space_invaders' or 'ALE/Pong-v5' to the CamelCase game name.

    Raises ValueError naming the closest valid games when the name is unknown.
    """
    match = re.fullmatch(r"ALE/(\w+)-v\d+", name)
    wanted = match.group(1) if match else name
    games = available_games()
    by_key = {_canonical(g): g for g in games}
    if _canonical(wanted) in by_key:
        return by_key[_canonical(wanted)]
    close = difflib.get_close_matches(_canonical(wanted), list(by_key), n=5, cutoff=0.5)
    hint = f" Closest valid names: {', '.join(by_key[c] for c in close)}." if close else ""
    other = ""
    if "/" in name or re.search(r"-v\d+$", name):  # a gymnasium id, not an Atari name
        other = f" {name!r} looks like a gymnasium id: train on it with --env-id {name} (and --env-module <package> " \
                f"when a package registers it)."
    elif not close:
        other = " For a gymnasium image env, use --env-id <id> instead of --game."
    raise ValueError(f"unknown Atari game {name!r}.{hint}{other} ({len(games)} games are available; see "
                     f"rise_runtime.envs.atari.available_games())")


# The standard protocol; the run config and rise-play take their defaults from these.
STICKY_ACTION_PROB = 0.25  # ALE v5 default (Machado et al. 2018)
NOOP_MAX = 30  # up to this many no-ops after reset (at least 1 when > 0)
MAX_EPISODE_FRAMES = 108_000  # emulator frames (= 27,000 agent steps at repeat 4, 30 minutes)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AtariSettings:
    """Emulator protocol of one Atari environment (see the constants above for the standard one)."""

    sticky_action_prob: float
    noop_max: int
    max_episode_frames: int  # emulator frames
    preprocessing: PreprocessingConfig
    flicker_prob: float  # each observed screen is blanked with this probability (0 = off)

    def __post_init__(self):
        if not 0.0 <= self.sticky_action_prob < 1.0:
            raise ValueError(f"sticky_action_prob must be in [0, 1), got {self.sticky_action_prob}")
        if self.noop_max < 0:
            raise ValueError(f"noop_max must be >= 0, got {self.noop_max}")
        if self.max_episode_frames < 1:
            raise ValueError(f"max_episode_frames must be >= 1, got {self.max_episode_frames}")
        check_flicker(self.flicker_prob)


class AtariEnv(ScreenEnv):
    """One Atari game emitting single preprocessed frames, uint8 [84, 84] (no stacking here)."""

    def __init__(self, game: str, settings: AtariSettings, seed: Optional[int] = None):
        _ensure_ale_registered()
        self.game = resolve_game(game)
        self.settings = settings
        # frameskip=1: the action repeat and max-pooling are ours. ALE's own frame cap is off; we
        # count emulator frames so truncation is exact and visible.
        self._ale_env = gym.make(
            f"ALE/{self.game}-v5",
            frameskip=1,
            repeat_action_probability=settings.sticky_action_prob,
            full_action_space=False,
            max_num_frames_per_episode=0,
        )
        self._ale = self._ale_env.unwrapped.ale
        self._action_set = self._ale.getMinimalActionSet()
        self.action_meanings = list(self._ale_env.unwrapped.get_action_meanings())
        self._init_screens(RAW_SCREEN_SHAPE, settings.preprocessing, settings.flicker_prob)
        self.action_space = gym.spaces.Discrete(len(self._action_set))
        if seed is not None:
            self.np_random = np.random.default_rng(seed)  # the stream gymnasium's reset(seed=seed) makes
        self._next_seed = seed
        self._episode_frames = 0
        self._lives = 0

    def _grab_screen(self) -> None:
        self._screens[0] = self._screens[1]
        self._ale.getScreenRGB(self._screens[1])

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)  # seeds self.np_random (the no-op draws) when a seed is given
        if seed is not None:
            self._next_seed = seed
        # gymnasium's reset seeds the emulator once; later resets continue its RNG stream.
        self._ale_env.reset(seed=self._next_seed)
        self._next_seed = None
        self._episode_frames = 0
        self._screens[:] = 0
        self._grab_screen()
        noops = int(self.np_random.integers(1, self.settings.noop_max + 1)) if self.settings.noop_max else 0
        for _ in range(noops):
            self._ale.act(self._action_set[0])
            self._episode_frames += 1
            self._grab_screen()
            if self._ale.game_over(with_truncation=False):
                self._ale_env.reset()
                self._episode_frames = 0
        self._lives = self._ale.lives()
        self._draw_flicker()
        return self._frame(), {"life_lost": False, "episode_frames": self._episode_frames}

    def step(self, action):
        ale_action = self._action_set[int(action)]
        repeat = self.settings.preprocessing.action_repeat
        reward = 0.0
        terminated = False
        for i in range(repeat):
            reward += self._ale.act(ale_action)
            self._episode_frames += 1
            terminated = self._ale.game_over(with_truncation=False)
            # Only the last two screens of the repeat are needed for the max-pool.
            if i >= repeat - 2 or terminated:
                self._grab_screen()
            if terminated:
                break
        truncated = not terminated and self._episode_frames >= self.settings.max_episode_frames
        lives = self._ale.lives()
        info = {"life_lost": lives < self._lives, "episode_frames": self._episode_frames}
        self._lives = lives
        self._draw_flicker()
        return self._frame(), float(reward), terminated, truncated, info

    def close(self):
        self._ale_env.close()
