"""N Atari lanes stepped by ale-py's native `AtariVectorEnv` (C++ threads), as one batched TF-Agents
PyEnvironment that emits the same frames as N `AtariEnv` lanes (`--parallel vector`).

ALE does the action repeat and the max over the last two RGB screens; the grayscale and resize are
ours (`rise_runtime.preprocessing`), so frames are bit-identical to `AtariEnv`'s for the same actions
(`tests/test_vector_env_parity.py`). Step types, discounts and life losses follow `FramePyEnvironment`.

Deliberate differences from N `AtariEnv` lanes, none of which changes a frame's meaning:
- sticky actions and no-op starts draw from ALE's RNG, not ours, so a seed gives other episodes;
  ALE draws 0..noop_max no-ops (ours 1..noop_max);
- ALE counts the 108k-frame cap from the end of the no-op start (ours from the reset);
- the screen of an episode's LAST step comes from another frame of the repeat (a few dozen pixels
  differ). At a game over it is never a learning input (the discount into it is 0); at the frame
  cap (a truncation, once per 108k frames) the learner bootstraps from it.
"""
from __future__ import annotations

import os
from typing import List

import numpy as np
from tf_agents.environments import py_environment
from tf_agents.trajectories import time_step as ts

from rise_runtime.envs.atari import AtariEnv, AtariSettings, resolve_game
from rise_runtime.preprocessing import RAW_SCREEN_SHAPE, preprocess_screens
from rise_tf.envs.specs import frame_specs


def rom_id(game: str) -> str:
    """'SpaceInvaders' -> 'space_invaders', the ROM name AtariVectorEnv takes."""
    from ale_py import roms

    by_key = {rom.replace("_", ""): rom for rom in roms.get_all_rom_ids()}
    return by_key[game.lower()]


class AtariVectorPyEnvironment(py_environment.PyEnvironment):
    """`num_envs` lanes of one game; lane i is seeded with seed + i. Resets itself per lane: the step
    after a lane's LAST returns that lane's FIRST (its action is ignored), as TF-Agents' auto-reset does."""

    def __init__(self, game: str, num_envs: int, seed: int, *, atari: AtariSettings, terminal_on_life_loss: bool,
                 num_threads: int = 0):
        super().__init__(handle_auto_reset=False)  # ALE resets each lane on the step after its LAST
        from ale_py.vector_env import AtariVectorEnv

        self.game = resolve_game(game)
        probe = AtariEnv(self.game, atari)  # the action meanings, from the same minimal action set
        self.action_meanings: List[str] = list(probe.action_meanings)
        num_actions = probe.action_space.n
        probe.close()
        self._settings = atari
        self._terminal_on_life_loss = terminal_on_life_loss
        self._num_envs = num_envs
        self._seed = seed
        height, width, _ = RAW_SCREEN_SHAPE
        self._vector = AtariVectorEnv(
            rom_id(self.game), num_envs,
            num_threads=num_threads or min(num_envs, os.cpu_count() or 1),
            img_height=height, img_width=width, grayscale=False, stack_num=1,
            frameskip=atari.preprocessing.action_repeat, maxpool=atari.preprocessing.max_pool_last_two,
            noop_max=atari.noop_max, repeat_action_probability=atari.sticky_action_prob,
            max_num_frames_per_episode=atari.max_episode_frames, reward_clipping=False, use_fire_reset=False,
            episodic_life=False, full_action_space=False)
        if self._vector.single_action_space.n != num_actions:
            raise RuntimeError(f"ALE's vector env gives {self.game} {self._vector.single_action_space.n} actions, "
                               f"its single env {num_actions}; use --parallel serial for this game")
        # Flicker draws one number per lane per observation from the lane's own stream (as AtariEnv does).
        self._flicker_rngs = [np.random.default_rng(seed + i) for i in range(num_envs)]
        self._observation_spec, self._action_spec = frame_specs(atari.preprocessing.frame_size, num_actions)
        self._lives = np.zeros(num_envs, np.int64)
        self._was_last = np.zeros(num_envs, bool)

    @property
    def batched(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return self._num_envs

    @property
    def envs(self):  # what the trainer reads the action meanings from, as on a BatchedPyEnvironment
        return [self]

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def _frames(self, screens: np.ndarray) -> np.ndarray:
        config = self._settings.preprocessing
        frames = np.stack([preprocess_screens(screens[i, 0], None, config) for i in range(self._num_envs)])
        if self._settings.flicker_prob > 0:
            for i, rng in enumerate(self._flicker_rngs):
                if rng.random() < self._settings.flicker_prob:
                    frames[i] = 0  # the frame of an all-black screen
        return frames

    def _reset(self):
        screens, info = self._vector.reset(seed=self._seed)
        self._seed = None  # seed once; later episodes continue ALE's own streams
        self._lives = np.asarray(info["lives"], np.int64)
        self._was_last[:] = False
        n = self._num_envs
        return ts.TimeStep(step_type=np.full(n, ts.StepType.FIRST, np.int32), reward=np.zeros(n, np.float32),
                           discount=np.ones(n, np.float32), observation=self._frames(screens))

    def _step(self, action):
        screens, reward, terminated, truncated, info = self._vector.step(np.asarray(action, np.int32).reshape(-1))
        lives = np.asarray(info["lives"], np.int64)
        first = self._was_last
        last = (terminated | truncated) & ~first
        step_type = np.where(first, ts.StepType.FIRST, np.where(last, ts.StepType.LAST, ts.StepType.MID))
        discount = np.ones(self._num_envs, np.float32)
        discount[terminated & ~first] = 0.0
        if self._terminal_on_life_loss:
            discount[(lives < self._lives) & ~first & ~last] = 0.0
        self._lives = lives
        self._was_last = last
        return ts.TimeStep(step_type=step_type.astype(np.int32),
                           reward=np.where(first, 0.0, reward).astype(np.float32),
                           discount=discount, observation=self._frames(screens))

    def close(self):
        self._vector.close()
