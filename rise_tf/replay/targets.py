"""n-step returns and bootstrap discounts, as a pure function (tested by hand)."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def n_step_targets(rewards: np.ndarray, discounts: np.ndarray, num_steps: np.ndarray,
                   gamma: float) -> Tuple[np.ndarray, np.ndarray]:
    """n-step return and bootstrap discount, per row.

    Args:
      rewards: [B, n] r_{t+1..t+n} (already clipped); discounts: [B, n] d_{t+1..t+n};
      num_steps: [B] m, how many of the n steps lie inside the episode (1..n); gamma: γ.
    Returns:
      returns [B] = Σ_{i<m} γ^i (∏_{j<i} d_j) r_i and bootstrap discounts [B] = γ^m ∏_{j<m} d_j.
    """
    batch, n = rewards.shape
    returns = np.zeros(batch, np.float64)
    running = np.ones(batch, np.float64)  # γ^i ∏_{j<i} d_j
    for i in range(n):
        inside = i < num_steps
        returns += np.where(inside, running * rewards[:, i], 0.0)
        running = np.where(inside, running * gamma * discounts[:, i], running)
    return returns.astype(np.float32), running.astype(np.float32)
