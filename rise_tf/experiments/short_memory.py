"""A trained memory policy with its memory cut short: does what it does depend on what lies further back?
(issue 21's ablation for the outside tasks, where hiding one cue cannot remove every trace of the past.)

RISE's ψ reads a window of the last k stored embeddings (the full-recurrent model: of the last k
frames) beside a window mask. `ShortMemory(policy, steps)` plays the same greedy policy but, before each
step, zeroes and masks every window entry older than `steps - 1` steps, so after the policy pushes the
new step its network reads only the newest `steps` steps — exactly what it reads `steps` steps into an
episode, a window it was trained on (the replay zero-pads and masks windows at an episode's start). The
frame stack is left alone: with `steps` equal to the frame stack (4) the policy sees no further back
than the frame-stack base does. A policy whose returns do not fall under the cut does not use the
steps it lost. One whose returns fall does, or meets a state it rarely trained on: a short window
beside a screen from far into an episode (cutting to several lengths tells the two apart in part).
"""
from __future__ import annotations

import numpy as np
from tf_agents.policies import py_policy as py_policies

WINDOW_KEYS = ("embedding_window", "frame_window")  # what ψ reads, oldest step first


def memory_window_length(policy_state_spec) -> int:
    """k of a policy's window of past steps; ValueError for a policy without one (the frame-stack base)."""
    if not isinstance(policy_state_spec, dict) or "window_mask" not in policy_state_spec:
        raise ValueError("the policy has no memory window to cut (a frame-stack policy such as btr or dqn): "
                         "give a RISE or full-recurrent run")
    return int(policy_state_spec["window_mask"].shape[0])


class ShortMemory(py_policies.PyPolicy):
    """`policy` (a Python policy over the RISE or full-recurrent state) reading at most its newest `steps`
    steps of memory. ValueError when the policy has no window or `steps` is no cut (outside 1 .. k-1)."""

    def __init__(self, policy: py_policies.PyPolicy, steps: int):
        window_length = memory_window_length(policy.policy_state_spec)
        if not 1 <= steps < window_length:
            raise ValueError(f"a memory cut to {steps} steps is no cut of a window of k = {window_length}: "
                             f"give 1 .. {window_length - 1}")
        super().__init__(policy.time_step_spec, policy.action_spec, policy.policy_state_spec, policy.info_spec)
        self._policy = policy
        self._forget_before = window_length - (steps - 1)  # entries [0, this) are older than steps - 1

    def _get_initial_state(self, batch_size):
        return self._policy.get_initial_state(batch_size)

    def _action(self, time_step, policy_state):
        state = dict(policy_state)
        for key in WINDOW_KEYS + ("window_mask",):
            if key in state:
                window = np.array(state[key])  # a copy: the caller's state stays as it was
                window[:, :self._forget_before] = 0
                state[key] = window
        return self._policy.action(time_step, state)
