"""TF-Agents `PyEnvironment`s over the frame environments, single and batched over N game lanes.

`FramePyEnvironment` adapts any gymnasium env that emits uint8 [84, 84] frames and takes discrete
actions (Atari, the MemoryCorridor tasks, any image env through `gym_image.GymImageEnv`) to
TF-Agents' TimeStep protocol:
  terminated -> LAST with discount 0; truncated (frame cap) -> LAST with discount 1, so the learner
  bootstraps through the cut; a life loss with `terminal_on_life_loss` -> MID with discount 0 (the
  learner stops bootstrapping there, the episode and the agent's memory go on).
Rewards stay raw; the learner clips.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from tf_agents.environments import batched_py_environment, parallel_py_environment, py_environment
from tf_agents.trajectories import time_step as ts

from rise_runtime.envs import registry
from rise_runtime.preprocessing import PreprocessingConfig
from rise_tf.envs.choices import PARALLEL_MODES, lane_mode
from rise_tf.envs.specs import frame_specs


class FramePyEnvironment(py_environment.PyEnvironment):
    """One game lane as a TF-Agents PyEnvironment (auto-resets after LAST)."""

    def __init__(self, gym_env, *, terminal_on_life_loss: bool, seed: Optional[int]):
        super().__init__(handle_auto_reset=True)
        self.gym_env = gym_env
        self._terminal_on_life_loss = terminal_on_life_loss
        self._seed = seed
        self._observation_spec, self._action_spec = frame_specs(gym_env.observation_space.shape[0],
                                                                gym_env.action_space.n)

    @property
    def action_meanings(self) -> List[str]:
        return list(self.gym_env.action_meanings)

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def _reset(self):
        frame, _ = self.gym_env.reset(seed=self._seed)
        self._seed = None  # seed once; later episodes continue the env's own RNG stream
        return ts.restart(frame)

    def _step(self, action):
        frame, reward, terminated, truncated, info = self.gym_env.step(int(action))
        reward = np.float32(reward)
        if terminated:
            return ts.termination(frame, reward)
        if truncated:
            return ts.truncation(frame, reward)
        discount = 0.0 if (self._terminal_on_life_loss and info.get("life_lost")) else 1.0
        return ts.transition(frame, reward, discount=np.float32(discount))

    def render(self, mode="rgb_array"):
        return self.gym_env.render()

    def close(self):
        self.gym_env.close()


def make_frame_env(description: Dict[str, Any], seed: Optional[int], *, preprocessing: PreprocessingConfig,
                   terminal_on_life_loss: bool, factory: Optional[Callable[[], Any]] = None) -> FramePyEnvironment:
    """One lane of the env a description names (rise_runtime.envs.registry, as rise-play builds it)."""
    gym_env = registry.make_env(description, preprocessing=preprocessing, factory=factory)
    return FramePyEnvironment(gym_env, terminal_on_life_loss=terminal_on_life_loss, seed=seed)


def make_batched_env(description: Dict[str, Any], num_envs: int, seed: int, mode: str, *,
                     preprocessing: PreprocessingConfig, terminal_on_life_loss: bool,
                     factory: Optional[Callable[[], Any]] = None) -> py_environment.PyEnvironment:
    """N lanes of one env as a batched PyEnvironment; lane i is seeded with seed + i.

    mode: one of PARALLEL_MODES (see rise_tf.envs.choices).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if mode not in PARALLEL_MODES:
        raise ValueError(f"unknown parallel mode {mode!r}; choose one of {PARALLEL_MODES}")
    atari = description["kind"] == registry.ATARI
    mode = lane_mode(mode, atari=atari)
    if mode == "vector":
        if not atari:
            raise ValueError("parallel mode 'vector' steps Atari games only; use serial, threads or processes")
        from rise_tf.envs.vector_atari import AtariVectorPyEnvironment

        return AtariVectorPyEnvironment(description["name"], num_envs, seed,
                                        atari=registry.atari_settings(description, preprocessing),
                                        terminal_on_life_loss=terminal_on_life_loss)
    constructors: Sequence[Callable[[], FramePyEnvironment]] = [
        functools.partial(make_frame_env, description, seed + i, preprocessing=preprocessing,
                          terminal_on_life_loss=terminal_on_life_loss, factory=factory) for i in range(num_envs)]
    if mode == "processes":
        from tf_agents.system import system_multiprocessing

        if not system_multiprocessing.multiprocessing_core.initialized():
            system_multiprocessing.enable_interactive_mode()
        return parallel_py_environment.ParallelPyEnvironment(constructors, start_serially=False)
    return batched_py_environment.BatchedPyEnvironment(
        [make() for make in constructors], multithreading=(mode == "threads"))
