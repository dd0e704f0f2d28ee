"""Which stored steps a batch draws: stratified sampling over a sum tree of priorities (all equal
when prioritization is off), importance weights, and priority updates. Knows slots, not contents.

Deliberate deviation from Schaul et al. (2016): importance weights are normalised by the largest
weight in the batch.
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from rise_tf.replay.sum_tree import SumTree

PRIORITY_EPSILON = 1e-6  # added to |error| before the exponent, so no stored step has priority 0
MAX_DRAW_ROUNDS = 20

# check(leaves) -> (usable [B] bool, stale [B] bool): stale leaves are dropped from the tree.
LeafCheck = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


def normalised_importance_weights(probabilities: np.ndarray, population, beta: float) -> np.ndarray:
    """(N P)^-β per sample, normalised by the batch's largest (the deviation named above). N may be a
    number or, per sample, the population size at sampling time (Reverb's table size)."""
    weights = (np.asarray(population, np.float64) * np.asarray(probabilities, np.float64)) ** (-beta)
    return (weights / weights.max()).astype(np.float32)


class PrioritizedSampler:
    def __init__(self, num_leaves: int, *, prioritized: bool, priority_exponent: float, seed: int):
        self.prioritized = prioritized
        self.priority_exponent = priority_exponent
        self.tree = SumTree(num_leaves)
        self.max_priority = 1.0
        self.rng = np.random.default_rng(seed)

    def track(self, leaves: np.ndarray, sampleable: bool) -> None:
        """New sampleable leaves start at the largest priority seen; others leave the tree."""
        priority = (self.max_priority if self.prioritized else 1.0) if sampleable else 0.0
        self.tree.set(leaves, np.full(len(leaves), priority))

    def draw(self, batch_size: int, check: LeafCheck, drop: Callable[[np.ndarray], None],
             has_any: Callable[[], bool]) -> np.ndarray:
        """batch_size leaves, one per equal slice of the priority mass, each passing `check`.
        Leaves found stale are handed to `drop` and drawn again."""
        leaves = np.zeros(batch_size, np.int64)
        pending = np.arange(batch_size)
        for _ in range(MAX_DRAW_ROUNDS):
            total = self.tree.total
            bounds = (pending + self.rng.random(len(pending))) * (total / batch_size)
            found = self.tree.find(np.minimum(bounds, np.nextafter(total, 0)))
            good, stale = check(found)
            drop(found[stale])
            leaves[pending[good]] = found[good]
            pending = pending[~good]
            if len(pending) == 0:
                return leaves
            if not has_any():
                raise RuntimeError("replay has no sampleable steps left")
        raise RuntimeError(f"could not draw a valid batch from replay after {MAX_DRAW_ROUNDS} tries")

    def importance_weights(self, leaves: np.ndarray, num_sampleable: int, beta: float) -> np.ndarray:
        if not self.prioritized:
            return np.ones(len(leaves), np.float32)
        return normalised_importance_weights(self.tree.get(leaves) / self.tree.total, num_sampleable, beta)

    def update(self, leaves: np.ndarray, errors: np.ndarray, still_valid: np.ndarray) -> None:
        """(|error| + ε)^α for the leaves that still hold the sampled step."""
        if not self.prioritized:
            return
        errors = np.abs(np.asarray(errors, np.float64))
        if not np.all(np.isfinite(errors)):
            raise ValueError("sample errors contain NaN or inf; refusing to write them as priorities")
        priorities = (errors + PRIORITY_EPSILON) ** self.priority_exponent
        if still_valid.any():
            self.tree.set(leaves[still_valid], priorities[still_valid])
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))
