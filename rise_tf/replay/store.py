"""The interface between the trainer and a replay: exactly what the trainer calls.

The in-process EmbeddingReplay and the Reverb-backed ReverbReplay (issue 11) implement it. `sample`'s
batch may hold numpy arrays or tensors (the trainer converts with tf.convert_to_tensor).
"""
from __future__ import annotations

import abc
from typing import Dict, Tuple

import numpy as np


class ReplayStore(abc.ABC):
    @abc.abstractmethod
    def add_batch(self, step_type, frame, embedding, action, reward, discount) -> None:
        """Appends one step for every lane; arrays have a leading [num_lanes] axis."""

    @abc.abstractmethod
    def sample(self, batch_size: int, beta: float) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Returns (batch, keys, importance_weights). Keys name the sampled steps for
        update_priorities, which ignores steps that have left the replay since."""

    @abc.abstractmethod
    def update_priorities(self, keys: np.ndarray, errors: np.ndarray) -> None:
        """New priorities (|error| + ε)^α for sampled keys; errors are per-sample |TD| (or BTR's
        quantile error)."""

    @property
    @abc.abstractmethod
    def num_sampleable(self) -> int:
        """Steps that can be drawn now (their bootstrap step is stored)."""

    @property
    @abc.abstractmethod
    def num_stored(self) -> int:
        """Steps held, sampleable or not (the trainer's warm-up counts these)."""

    @abc.abstractmethod
    def bytes_per_step(self) -> float:
        """Memory per stored step, for the start-up report."""

    @abc.abstractmethod
    def save(self, directory: str) -> None:
        """Writes the contents into `directory` (the caller makes it atomic)."""

    @abc.abstractmethod
    def restore(self, directory: str) -> None:
        """Reads what save wrote; open episodes end as truncations (their envs restart)."""

    def close(self) -> None:
        """Releases what the store holds beyond memory (a server, connections)."""
