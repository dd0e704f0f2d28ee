"""A run's progress, saved in every checkpoint (state.json) and continued on --resume. TensorFlow-free."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict

# What a checkpoint must hold: without them a resume would silently start again from 0.
REQUIRED = ("frames", "agent_steps", "updates", "episodes")


class DamagedCounters(ValueError):
    """A checkpoint's counters are missing or invalid."""


@dataclasses.dataclass
class Counters:
    """Units: `frames` are emulator frames (agent steps x action_repeat on Atari, 1:1 otherwise);
    `agent_steps` count one step of one lane; `updates` count learner updates. The seconds add up
    over resumes: experiments report a run's whole cost."""

    frames: int = 0
    agent_steps: int = 0
    updates: int = 0
    episodes: int = 0
    earning_steps: int = 0  # agent steps collected while warm: they earn updates (parts/updates.py)
    solved_at_frames: int = -1  # --stop-at-success: the frames of the evaluation that passed
    best_eval_frames: int = -1  # the evaluation with the highest mean return so far (-1: none yet)
    best_eval_return: float = 0.0  # its mean return (its weights: checkpoints/best)
    wall_seconds: float = 0.0
    update_seconds: float = 0.0
    sample_seconds: float = 0.0
    timed_updates: int = 0  # updates in the timings (the first of each process traces the graph)

    def forget_best(self) -> None:
        """No best evaluation yet (its weights are gone): the next evaluation becomes the best."""
        unset = Counters()
        self.best_eval_frames, self.best_eval_return = unset.best_eval_frames, unset.best_eval_return

    def to_dict(self) -> Dict[str, float]:
        return dataclasses.asdict(self)

    @staticmethod
    def check(state: Dict[str, Any]) -> None:
        """Raises DamagedCounters when a checkpoint's required count is missing, not a whole number
        >= 0, or inconsistent (fewer frames than agent steps)."""
        for name in REQUIRED:
            value = state.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0 or value != int(value):
                raise DamagedCounters(f"its counter {name!r} is {'missing' if value is None else repr(value)}")
        if state["frames"] < state["agent_steps"]:
            raise DamagedCounters(f"its counters disagree ({state['frames']} frames < {state['agent_steps']} agent steps)")

    def load(self, state: Dict[str, Any], replay_ratio: float) -> None:
        """From a checkpoint's state (checked first: nothing changes when it is damaged)."""
        self.check(state)
        for field in dataclasses.fields(self):
            if field.name in state:
                setattr(self, field.name, type(getattr(self, field.name))(state[field.name]))
        if "earning_steps" not in state:
            # Checkpoints before this field kept the fraction of an update earned (update_credit).
            credit = float(state.get("update_credit", 0.0))
            self.earning_steps = round((self.updates + credit) / replay_ratio) if replay_ratio > 0 else 0
