"""The learner: replay -> batch (one host -> device copy) -> one update (the agent's tf.function) ->
priorities back to replay. Timings exclude each process's first update (it traces the graph)."""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from rise_tf.replay.segments import SequenceShape, segment_priority


class NonFiniteLoss(RuntimeError):
    """An update's loss was NaN or inf; the update did not change the weights."""


@dataclasses.dataclass
class Sampled:
    batch: object  # nest of tensors: [B] single steps, or [B, T] segment records (replay/sequences.py)
    keys: np.ndarray  # [B]: the steps, or the segments' start steps
    weights: object  # tensor [B]: importance weights, one per step or per segment
    seconds: float  # time to sample and assemble it


class Learner:
    def __init__(self, agent, replay, *, batch_size: int, sequence_shape: SequenceShape, segment_priority_eta: float,
                 device: str, strategy, counters, importance_beta: Callable[[], float],
                 replay_lock: Optional[threading.Lock] = None):
        """counters: the run's Counters (updates and timings are counted here); importance_beta() is PER β now.
        sequence_shape.segment_length m > 1: each update trains batch_size segments of m consecutive steps
        (replay/segments.py), each segment's priority R2D2's mix with segment_priority_eta."""
        self.agent, self.replay, self.batch_size = agent, replay, batch_size
        self.sequence_shape, self.segment_priority_eta = sequence_shape, segment_priority_eta
        self.device, self.strategy, self.counters = device, strategy, counters
        self._importance_beta = importance_beta
        self.replay_lock = replay_lock or threading.Lock()
        self.last_loss = float("nan")
        self.last_q = float("nan")
        self._updates_this_process = 0  # the first one traces the tf.function: kept out of update timings

    @property
    def segment_length(self) -> int:
        return self.sequence_shape.segment_length

    def sample(self) -> Sampled:
        """A batch from replay, as tensors, with its keys and importance weights."""
        beta = self._importance_beta()
        started = time.perf_counter()
        with self.replay_lock:  # the batch is a copy: collection may write on once it is assembled
            if self.segment_length == 1:
                batch, keys, weights = self.replay.sample(self.batch_size, beta)
            else:
                batch, keys, weights = self.replay.sample_segments(self.batch_size, self.sequence_shape, beta)
        tensors = tf.nest.map_structure(tf.convert_to_tensor, batch)
        weights = tf.convert_to_tensor(weights)
        # One host -> device copy per batch, made here, off the learner's path (a mirrored learner's
        # strategy places each replica's slice itself).
        if self.device != "/CPU:0" and self.strategy is None:
            with tf.device(self.device):
                tensors, weights = tf.nest.map_structure(tf.identity, (tensors, weights))
        return Sampled(tensors, keys, weights, time.perf_counter() - started)

    def write_priorities(self, keys: np.ndarray, errors: np.ndarray) -> None:
        with self.replay_lock:
            self.replay.update_priorities(keys, errors)

    def update(self, sampled: Sampled, write_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]] = None) -> None:
        """One update on a sampled batch, then its priorities (written here, or handed to
        `write_priorities`: the concurrent engine's sampler writes them, off the learner's path)."""
        updating = time.perf_counter()
        try:
            loss_info = self.agent.train(sampled.batch, sampled.weights)
        except tf.errors.InvalidArgumentError as error:
            if "NaN or inf" not in str(error):
                raise
            raise NonFiniteLoss(str(error).splitlines()[0][:200]) from None
        errors = loss_info.extra.sample_errors.numpy()  # .numpy() waits for the update
        if loss_info.extra.trainable is not None:  # one priority per segment, written to its start step
            errors = segment_priority(errors, loss_info.extra.trainable.numpy(), self.segment_priority_eta)
        (write_priorities or self.write_priorities)(sampled.keys, errors)
        if self._updates_this_process > 0:
            self.counters.update_seconds += time.perf_counter() - updating
            self.counters.sample_seconds += sampled.seconds
            self.counters.timed_updates += 1
        self._updates_this_process += 1
        self.counters.updates += 1
        self.last_loss = float(loss_info.loss)
        self.last_q = float(loss_info.extra.q_mean)

    def learn_once(self) -> None:
        self.update(self.sample())
