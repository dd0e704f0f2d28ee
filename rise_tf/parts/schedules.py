"""ε and PER β as functions of emulator frames. TensorFlow-free."""
from __future__ import annotations

import math


def linear_schedule(start: float, end: float, duration: float, t: float) -> float:
    fraction = min(max(t / duration, 0.0), 1.0) if duration > 0 else 1.0
    return start + fraction * (end - start)


def exploration_epsilon(train, frames: int) -> float:
    """ε of the collect policy after `frames` (train: the config's TrainConfig): linear or geometric
    decay, and 0 once the ε-greedy part of the budget (epsilon_greedy_fraction) is over (BTR: noisy
    nets explore after half)."""
    if frames >= train.epsilon_greedy_fraction * train.frames:
        return 0.0
    if train.epsilon_schedule == "exponential":
        return train.epsilon_end + (train.epsilon_start - train.epsilon_end) * math.exp(-frames / train.epsilon_decay_frames)
    return linear_schedule(train.epsilon_start, train.epsilon_end, train.epsilon_decay_frames, frames)


def importance_beta(replay, train, frames: int) -> float:
    """PER β (replay: ReplayConfig), annealed linearly over the whole frame budget."""
    return linear_schedule(replay.importance_beta_start, replay.importance_beta_end, train.frames, frames)
