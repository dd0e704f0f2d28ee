"""The collector: a run's lanes stepped by a TF-Agents driver with the collect policy, every step
handed to a sink (the in-process replay, or Reverb lane writers on a distributed actor), episode
statistics and TF-Agents' own episode metrics beside it."""
from __future__ import annotations

import collections
import threading
from typing import Callable

import numpy as np
from tf_agents.drivers import py_driver
from tf_agents.metrics import py_metrics
from tf_agents.policies import py_tf_eager_policy


class EpisodeStats:
    """Observer: raw per-lane returns of finished episodes (whole games: life loss is not an end)."""

    def __init__(self, lanes: int, window: int = 100):
        self.running = np.zeros(lanes)
        self.recent = collections.deque(maxlen=window)
        self.finished = 0  # since the last take_finished()
        self.agent_steps = 0
        self.episodes = 0  # all, with the sum of their returns (actors report differences of these)
        self.return_sum = 0.0

    def __call__(self, trajectory):
        is_last = trajectory.step_type == 2
        # A LAST row's reward belongs to the reset that follows: the episode's return is complete.
        for value in self.running[is_last]:
            self.recent.append(float(value))
            self.return_sum += float(value)
        self.finished += int(is_last.sum())
        self.episodes += int(is_last.sum())
        self.running = np.where(is_last, 0.0, self.running + trajectory.reward)
        self.agent_steps += int((~trajectory.is_boundary()).sum())

    def take_finished(self) -> int:
        finished, self.finished = self.finished, 0
        return finished

    def recent_return(self) -> float:
        recent = list(self.recent)  # a copy: a collector thread may append meanwhile
        return float(np.mean(recent)) if recent else float("nan")


class ReplaySink:
    """Writes each driver step (all lanes) to an in-process replay, under the replay's lock (a
    concurrent learner samples meanwhile). current_replay() names the replay at each write: a resume
    may replace it (a checkpoint's saved replay is restored into a fresh one)."""

    def __init__(self, current_replay: Callable[[], object], lock: threading.Lock):
        self.current_replay, self.lock = current_replay, lock

    def __call__(self, trajectory) -> None:
        embedding = trajectory.policy_info.get("embedding") if isinstance(trajectory.policy_info, dict) else None
        with self.lock:
            self.current_replay().add_batch(trajectory.step_type, trajectory.observation, embedding, trajectory.action,
                                  trajectory.reward, trajectory.discount)


class Collector:
    """Steps every lane once per `step()`: policy -> env -> sink and statistics."""

    def __init__(self, env, collect_policy, sink: Callable, *, epsilon_variable, epsilon: Callable[[], float]):
        """epsilon() is the ε to act with now (read before each step); it is written to epsilon_variable."""
        self.env = env
        self.lanes = env.batch_size or 1
        self.stats = EpisodeStats(self.lanes)
        # TF-Agents' own episode metrics, logged under their standard TensorBoard names beside ours.
        self.metrics = [py_metrics.NumberOfEpisodes(), py_metrics.EnvironmentSteps(),
                        py_metrics.AverageReturnMetric(batch_size=self.lanes),
                        py_metrics.AverageEpisodeLengthMetric(batch_size=self.lanes)]
        self._policy = py_tf_eager_policy.PyTFEagerPolicy(collect_policy, use_tf_function=True, batch_time_steps=False)
        self.driver = py_driver.PyDriver(env, self._policy, [sink, self.stats, *self.metrics], max_steps=self.lanes)
        self._epsilon_variable, self._epsilon = epsilon_variable, epsilon
        self._time_step = None
        self._policy_state = None

    def start(self) -> None:
        """Resets every lane (a run's lanes start fresh on every start, resumes included)."""
        self._time_step = self.env.reset()
        self._policy_state = self._policy.get_initial_state(self.lanes)

    def step(self) -> int:
        """One step of every lane; returns the agent steps it added (boundary steps excluded)."""
        if self._time_step is None:
            self.start()
        self._epsilon_variable.assign(self._epsilon())
        steps_before = self.stats.agent_steps
        self._time_step, self._policy_state = self.driver.run(self._time_step, self._policy_state)
        return self.stats.agent_steps - steps_before

    def close(self) -> None:
        self.env.close()
