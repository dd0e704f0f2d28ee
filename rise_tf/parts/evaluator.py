"""Evaluation: one whole episode per lane with the evaluation policy (deterministic network, ε_eval), raw
game scores (no clipping, no life-loss cuts)."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

import numpy as np
from tf_agents.policies import py_policy as py_policies, py_tf_eager_policy

from rise_runtime.envs.atari_scores import human_normalized_score


@dataclasses.dataclass
class EvalResult:
    returns: List[float]
    lengths: List[int]  # agent steps per episode
    human_normalized: Optional[float]  # mean HNS, or None without reference scores

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def success_rate(self) -> float:
        """Fraction of episodes with a positive return: the memory tasks' success. Other envs define
        success differently or not at all, so runs record it for the memory tasks only."""
        return float(np.mean(np.asarray(self.returns) > 0))


def success_record(config, result: EvalResult, prefix: str = "") -> Dict[str, float]:
    """{prefix + "success_rate": ...} for a memory task's evaluation (record or summary); {} for envs
    that do not define success."""
    return {f"{prefix}success_rate": result.success_rate} if config.is_memory_task else {}


def as_py_policy(policy) -> py_policies.PyPolicy:
    """A TF policy wrapped for stepping a Python env, its action function compiled (once per wrapper:
    keep the wrapper to evaluate again without tracing again)."""
    return py_tf_eager_policy.PyTFEagerPolicy(policy, use_tf_function=True, batch_time_steps=False)


def evaluate(policy, env, num_episodes: int, game: str, max_steps: int = 1_000_000) -> EvalResult:
    """Runs `policy` (a TF policy, or one already wrapped by as_py_policy) on the batched `env` until
    `num_episodes` episodes finish.

    Each round resets every lane and counts each lane's first episode only, so short episodes do
    not crowd out long ones (the bias TF-Agents documents for max_episodes with batched envs).
    """
    py_policy = policy if isinstance(policy, py_policies.PyPolicy) else as_py_policy(policy)
    lanes = env.batch_size or 1
    returns, lengths = [], []
    while len(returns) < num_episodes:
        time_step = env.reset()
        state = py_policy.get_initial_state(lanes)
        running = np.zeros(lanes)
        steps = np.zeros(lanes, np.int64)
        done = np.zeros(lanes, bool)
        for _ in range(max_steps):
            action_step = py_policy.action(time_step, state)
            time_step, state = env.step(action_step.action), action_step.state
            running += np.where(done, 0.0, time_step.reward)
            steps += ~done
            done |= time_step.is_last()
            if done.all():
                break
        for lane in range(lanes):
            if len(returns) < num_episodes:
                returns.append(float(running[lane]))
                lengths.append(int(steps[lane]))
    scores = [human_normalized_score(game, r) for r in returns]
    hns = None if scores[0] is None else float(np.mean(scores))
    return EvalResult(returns, lengths, hns)


def final_evaluation_due(eval_every_frames: int, last_eval_frames: Optional[int], frames: int) -> bool:
    """A run that evaluates ends with an evaluation of its last weights, unless it has just made one
    (a periodic evaluation can land on the last frame count, which need not be a multiple of the period)."""
    return bool(eval_every_frames) and last_eval_frames != frames


EVAL_SEED_OFFSET = 10_000  # eval lanes never share seeds with training lanes
MAX_EVAL_LANES = 16


class Evaluator:
    """Evaluates a policy on its own lanes (built on first use, seeded apart from training's)."""

    def __init__(self, make_env, policy, *, episodes: int, env_name: str):
        """make_env(num_envs, seed_offset) -> a batched env of evaluation lanes."""
        self._make_env, self.episodes, self.env_name = make_env, episodes, env_name
        self._env = None
        self._py_policy = as_py_policy(policy)  # traced at the first evaluation only

    def evaluate(self) -> EvalResult:
        if self._env is None:
            self._env = self._make_env(min(self.episodes, MAX_EVAL_LANES), EVAL_SEED_OFFSET)
        return evaluate(self._py_policy, self._env, self.episodes, self.env_name)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
