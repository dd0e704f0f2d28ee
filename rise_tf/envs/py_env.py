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

import dataclasses
import functools
from typing import Callable, List, Optional, Sequence

import numpy as np
from tf_agents.environments import batched_py_environment, parallel_py_environment, py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from rise_runtime.envs.atari import AtariEnv, AtariSettings
from rise_runtime.envs.gym_image import GymSource
from rise_runtime.envs.memory_task import MemoryCorridorEnv, MemoryTaskSettings, is_memory_task
from rise_tf.envs.choices import PARALLEL_MODES, lane_mode



def frame_specs(frame_size: int, num_actions: int):
    """(observation spec, action spec) of every rise-tf lane: one uint8 frame, one discrete action."""
    return (array_spec.BoundedArraySpec((frame_size, frame_size), np.uint8, 0, 255, name="frame"),
            array_spec.BoundedArraySpec((), np.int32, 0, num_actions - 1, name="action"))


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


def make_frame_env(game: str, seed: Optional[int], *, atari: AtariSettings, terminal_on_life_loss: bool,
                   memory: MemoryTaskSettings, frame_size: int, gym_source: Optional[GymSource]) -> FramePyEnvironment:
    """Builds one lane: the `gym_source` env when given, else a MemoryCorridor task or an Atari game by name."""
    if gym_source is not None:
        gym_env = gym_source.make()
    elif is_memory_task(game):
        gym_env = MemoryCorridorEnv(**dataclasses.asdict(memory), frame_size=frame_size)
    else:
        gym_env = AtariEnv(game, atari)
    return FramePyEnvironment(gym_env, terminal_on_life_loss=terminal_on_life_loss, seed=seed)


def make_batched_env(game: str, num_envs: int, seed: int, mode: str, **lane_kwargs) -> py_environment.PyEnvironment:
    """N lanes of one game as a batched PyEnvironment; lane i is seeded with seed + i.

    mode: one of PARALLEL_MODES (see rise_tf.envs.choices).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if mode not in PARALLEL_MODES:
        raise ValueError(f"unknown parallel mode {mode!r}; choose one of {PARALLEL_MODES}")
    atari = lane_kwargs.get("gym_source") is None and not is_memory_task(game)
    mode = lane_mode(mode, atari=atari)
    if mode == "vector":
        if not atari:
            raise ValueError("parallel mode 'vector' steps Atari games only; use serial, threads or processes")
        from rise_tf.envs.vector_atari import AtariVectorPyEnvironment

        return AtariVectorPyEnvironment(game, num_envs, seed, atari=lane_kwargs["atari"],
                                        terminal_on_life_loss=lane_kwargs["terminal_on_life_loss"])
    constructors: Sequence[Callable[[], FramePyEnvironment]] = [
        functools.partial(make_frame_env, game, seed + i, **lane_kwargs) for i in range(num_envs)]
    if mode == "processes":
        from tf_agents.system import system_multiprocessing

        if not system_multiprocessing.multiprocessing_core.initialized():
            system_multiprocessing.enable_interactive_mode()
        return parallel_py_environment.ParallelPyEnvironment(constructors, start_serially=False)
    return batched_py_environment.BatchedPyEnvironment(
        [make() for make in constructors], multithreading=(mode == "threads"))
