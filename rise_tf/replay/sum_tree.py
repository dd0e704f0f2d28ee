"""A sum tree over a fixed number of leaves, vectorised with numpy (one loop step per tree level)."""
from __future__ import annotations

import numpy as np


class SumTree:
    def __init__(self, num_leaves: int):
        if num_leaves < 1:
            raise ValueError(f"num_leaves must be >= 1, got {num_leaves}")
        self.num_leaves = num_leaves
        self._first_leaf = 1 << int(np.ceil(np.log2(max(num_leaves, 2))))
        self._depth = int(np.log2(self._first_leaf))
        self.nodes = np.zeros(2 * self._first_leaf, np.float64)  # node 1 is the root

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def get(self, leaves: np.ndarray) -> np.ndarray:
        return self.nodes[self._first_leaf + np.asarray(leaves)]

    def set(self, leaves: np.ndarray, values: np.ndarray) -> None:
        leaves = np.asarray(leaves, np.int64)
        values = np.asarray(values, np.float64)
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("sum-tree values must be finite and >= 0")
        nodes = self._first_leaf + leaves
        self.nodes[nodes] = values  # for repeated leaves the last value wins
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def find(self, targets: np.ndarray) -> np.ndarray:
        """For each target in [0, total), the leaf whose cumulative range holds it."""
        targets = np.array(targets, np.float64)
        nodes = np.ones(targets.shape, np.int64)
        for _ in range(self._depth):
            left = 2 * nodes
            go_right = targets >= self.nodes[left]
            targets = np.where(go_right, targets - self.nodes[left], targets)
            nodes = np.where(go_right, left + 1, left)
        return np.minimum(nodes - self._first_leaf, self.num_leaves - 1)
