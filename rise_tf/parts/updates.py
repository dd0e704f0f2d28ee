"""The one rule for when the learner learns: warm up, then hold the replay ratio. TensorFlow-free.

Units: agent steps (one step of one lane) and learner updates. After the replay holds the warm-up,
every agent step collected earns `replay_ratio` updates; the learner owes the whole updates earned
and not yet made. The serial loop, the concurrent engine's rate limiter, the Reverb tables' rate
limiter (sizes) and the TF-Agents peer all take their numbers from here.
"""
from __future__ import annotations

import math

# Float sums of a ratio like 1/64 land a hair below a whole number; this keeps 64 x (1/64) at 1.
_ROUNDING = 1e-9


def warmup_agent_steps(warmup_frames: int, frames_per_agent_step: int) -> int:
    """Agent steps replay must hold before the first update (at least one)."""
    return max(math.ceil(max(warmup_frames, 1) / frames_per_agent_step), 1)


def is_warm(stored_agent_steps: int, warmup_frames: int, frames_per_agent_step: int) -> bool:
    return stored_agent_steps >= warmup_agent_steps(warmup_frames, frames_per_agent_step)


def updates_allowed(replay_ratio: float, earning_agent_steps: int) -> int:
    """Updates `earning_agent_steps` agent steps (those collected once warm) have earned."""
    return int(math.floor(replay_ratio * max(earning_agent_steps, 0) + _ROUNDING))


def updates_owed(replay_ratio: float, earning_agent_steps: int, updates_made: int) -> int:
    """Updates earned and not yet made (never negative)."""
    return max(updates_allowed(replay_ratio, earning_agent_steps) - updates_made, 0)
