"""A ReplayStore on a Reverb server (dm-reverb 0.14, built for TensorFlow 2.15): issue 11's replay.

Reverb does the storing, sampling, prioritizing, rate limiting and checkpointing; this module only
says what goes in and what comes out:

    LaneWriters    one Reverb TrajectoryWriter per env lane: each step appended once, and an item per
                   sampleable step (reverb_items.py) made from the writer's history, so steps are
                   shared between items, never copied
    make_table     the prioritized (or uniform) table: FIFO removal at the replay's capacity, the
                   item signature, and a rate limiter
    ReplayServer   a Reverb server with its checkpoint directory (restarts load the newest checkpoint)
    ReverbReplay   the trainer's ReplayStore: writes through LaneWriters, samples batches from a
                   tf.data pipeline (TrajectoryDataset -> learner_inputs -> batch -> prefetch)

Deliberate differences from the in-process replay (embedding_replay.py): sampling is Reverb's, so it
follows no seed; importance weights use the table's size at sampling time as N; a new item's priority
is the largest this store has written (actors in other processes are told it with the weights).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from rise_tf.replay import reverb_items
from rise_tf.replay.layout import LAST, ReplayLayout
from rise_tf.replay.segments import PAD
from rise_tf.replay.prioritized import PRIORITY_EPSILON, normalised_importance_weights
from rise_tf.replay.store import ReplayStore

TABLE = "rise_windows"
MARKER = "reverb_checkpoint.json"
BLOCKED_CHECK_MS = 1_000  # what ReverbReplay.save writes into a run checkpoint


class NoBatchYet(RuntimeError):
    """The table's rate limiter held the sample back for the whole sample timeout."""


def import_reverb():
    """Reverb, or a clear error naming the extra to install."""
    try:
        import reverb
    except ImportError as error:  # pragma: no cover - the test extra installs it
        raise RuntimeError("Reverb replay needs dm-reverb 0.14 (built for TensorFlow 2.15): "
                           "pip install -e '.[distributed]'") from error
    return reverb


def make_table(layout: ReplayLayout, *, segment_length: int = 1, rate_limiter=None):
    """The replay table (items of single steps, or of segments of `segment_length`). Without a rate
    limiter it samples as soon as it holds one item (the in-process trainer holds the replay ratio
    itself); distributed runs pass SampleToInsertRatio."""
    reverb = import_reverb()
    sampler = (reverb.selectors.Prioritized(layout.priority_exponent) if layout.prioritized
               else reverb.selectors.Uniform())
    return reverb.Table(name=TABLE, sampler=sampler, remover=reverb.selectors.Fifo(), max_size=layout.capacity,
                        rate_limiter=rate_limiter or reverb.rate_limiters.MinSize(1),
                        signature=reverb_items.item_spec(layout, segment_length))


class ReplayServer:
    """A Reverb server holding the replay table.

    Reverb writes checkpoints under `checkpoint_root` (a temporary directory when None) and, when it
    starts, loads the newest one there, or `load_from` (one checkpoint's own directory) when the root
    is empty."""

    def __init__(self, layout: ReplayLayout, *, segment_length: int = 1, port: Optional[int] = None,
                 checkpoint_root: Optional[str] = None, load_from: Optional[str] = None, rate_limiter=None):
        reverb = import_reverb()
        self._temporary_root = None if checkpoint_root else tempfile.mkdtemp(prefix="rise-reverb-")
        self.checkpoint_root = checkpoint_root or self._temporary_root
        os.makedirs(self.checkpoint_root, exist_ok=True)
        checkpointer = reverb.checkpointers.DefaultCheckpointer(self.checkpoint_root, fallback_checkpoint_path=load_from)
        self.server = reverb.Server([make_table(layout, segment_length=segment_length, rate_limiter=rate_limiter)],
                                    port=port,
                                    checkpointer=checkpointer)
        self.address = f"localhost:{self.server.port}"

    def stop(self) -> None:
        self.server.stop()
        if self._temporary_root:
            shutil.rmtree(self._temporary_root, ignore_errors=True)


class LaneWriters:
    """Writes the steps of several env lanes to Reverb, one TrajectoryWriter each.

    Each writer starts with R-1 padding rows (step type PAD, zeros) so the first items have full
    slices; windows are masked before the padding's end as before an episode's FIRST. A writer made
    after a reconnect, mid-episode, pads again: its windows then start after the padding."""

    def __init__(self, client, layout: ReplayLayout, lane_ids: Sequence[int], priority: Callable[[], float],
                 on_blocked: Optional[Callable[[], None]] = None, segment_length: int = 1):
        """priority: a new item's priority; on_blocked: called every BLOCKED_CHECK_MS while the table's
        rate limiter holds this writer back (an actor checks there whether the learner is done);
        segment_length m: each item is the segment of m steps starting at its step."""
        self.layout = layout
        self.on_blocked = on_blocked
        self._deadline_error = import_reverb().errors.DeadlineExceededError
        self.lane_ids = np.asarray(lane_ids, np.int32)
        self.priority = priority
        self.length = reverb_items.item_length(layout, segment_length)
        self.writers = [client.trajectory_writer(num_keep_alive_refs=self.length) for _ in lane_ids]
        self.rows_written = np.zeros(len(lane_ids), np.int64)
        # Step types of each lane's newest m-1+n+1 rows (an item starts at a row that is neither LAST nor PAD).
        self._recent_types = np.full((len(lane_ids), segment_length + layout.n_step), PAD, np.uint8)
        spec = reverb_items.step_spec(layout)
        for writer, lane in zip(self.writers, self.lane_ids):
            for _ in range(reverb_items.reach(layout) - 1):
                pad = {name: np.zeros(s.shape, s.dtype.as_numpy_dtype) for name, s in spec.items()}
                pad.update(step_type=np.uint8(PAD), lane=np.int32(lane), row=np.int64(-1))
                writer.append(pad)

    def append(self, step_type, frame, embedding, action, reward, discount) -> int:
        """One step for every lane (leading [lanes] axis); returns how many items it made."""
        made = 0
        step_type = np.asarray(step_type, np.uint8)
        self._recent_types = np.concatenate([self._recent_types[:, 1:], step_type[:, None]], axis=1)
        for i, writer in enumerate(self.writers):
            step = {"frame": np.asarray(frame[i], np.uint8), "action": np.int32(action[i]),
                    "reward": np.float32(reward[i]), "discount": np.float32(discount[i]),
                    "step_type": step_type[i], "lane": self.lane_ids[i], "row": self.rows_written[i]}
            if self.layout.embedding_size:
                step["embedding"] = np.asarray(embedding[i], self.layout.embedding_dtype)
            writer.append(step)
            # Row t = newest - (m-1+n) now has all the rows after it its item reads: an item, unless t ended
            # its episode.
            if self._recent_types[i, 0] not in (LAST, PAD):
                history = writer.history
                writer.create_item(TABLE, priority=self.priority(),
                                   trajectory={name: history[name][-self.length:] for name in history.keys()})
                self._wait_for_room(writer)
                made += 1
        self.rows_written += 1
        return made

    def _wait_for_room(self, writer) -> None:
        """Backpressure: at most an item's length of items in flight per lane. While the table's rate
        limiter holds inserts back (the learner is behind), this waits: the replay ratio holds."""
        while True:
            try:
                writer.flush(block_until_num_items=self.length, timeout_ms=BLOCKED_CHECK_MS)
                return
            except self._deadline_error:
                if self.on_blocked is not None:
                    self.on_blocked()

    def flush(self) -> None:
        """Sends every item made so far (Reverb sends an item once its rows' chunks are complete)."""
        for writer in self.writers:
            writer.flush()

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def sample_dataset(address: str, layout: ReplayLayout, input_keys: Sequence[str], batch_size: int,
                   prefetch: int, timeout_ms: int = -1, segment_length: int = 1) -> tf.data.Dataset:
    """Batches of (learner sample, key, probability, table size, lane, row) from the table. The learner
    sample is a single step's inputs and targets, or a segment's record (replay/sequences.py); lane
    and row name the step (the segment's start). With a timeout, the dataset ends when the rate
    limiter holds a sample back that long."""
    reverb = import_reverb()
    spec = reverb_items.item_spec(layout, segment_length)
    dataset = reverb.TrajectoryDataset(
        address, TABLE, dtypes=tf.nest.map_structure(lambda s: s.dtype, spec),
        shapes=tf.nest.map_structure(lambda s: s.shape, spec),
        max_in_flight_samples_per_worker=2 * batch_size, rate_limiter_timeout_ms=timeout_ms)
    start = reverb_items.reach(layout) - 1

    def to_learner(sample):
        item = sample.data
        if segment_length > 1:
            learner_sample = {key: value for key, value in item.items() if key not in ("lane", "row")}
        else:
            learner_sample = reverb_items.learner_inputs(item, layout, input_keys)
        return (learner_sample, sample.info.key, sample.info.probability, sample.info.table_size, item["lane"][start],
                item["row"][start])

    return (dataset.map(to_learner, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
            .batch(batch_size, drop_remainder=True).prefetch(prefetch))


def importance_weights(probability: np.ndarray, table_size: np.ndarray, beta: float, prioritized: bool) -> np.ndarray:
    """(N P)^-β with N the table's size at sampling time, normalised by the batch's largest."""
    if not prioritized:
        return np.ones(len(probability), np.float32)
    return normalised_importance_weights(probability, table_size, beta)


class ReverbReplay(ReplayStore):
    """The trainer's replay on a Reverb server: an embedded one (address None) or one elsewhere."""

    def __init__(self, layout: ReplayLayout, input_keys: Sequence[str], *, batch_size: int, prefetch: int = 2,
                 address: Optional[str] = None, lane_ids=None, sample_timeout_ms: int = -1, segment_length: int = 1):
        """lane_ids: the lanes this process writes (none for a learner); sample_timeout_ms: `sample`
        raises NoBatchYet when the rate limiter holds a batch back that long (-1: waits);
        segment_length m > 1: items are segments (`sample_segments`), m = 1 single steps (`sample`)."""
        self.layout = layout
        self.segment_length = segment_length
        self.sample_timeout_ms = sample_timeout_ms
        self.input_keys = tuple(input_keys)
        self.batch_size = batch_size
        self.prefetch = prefetch
        self.lane_ids = np.arange(layout.num_lanes) if lane_ids is None else np.asarray(lane_ids)
        self.max_priority = 1.0
        self.server = None
        self._connect(address)

    def _connect(self, address: Optional[str], load_from: Optional[str] = None) -> None:
        """To the server at `address`, or to an embedded one started here (loading `load_from`)."""
        reverb = import_reverb()
        if address is None:
            self.server = ReplayServer(self.layout, segment_length=self.segment_length, load_from=load_from)
        self.address = address or self.server.address
        self.client = reverb.Client(self.address)
        self.writers = LaneWriters(self.client, self.layout, self.lane_ids, priority=lambda: self.max_priority,
                                   segment_length=self.segment_length)
        self._iterator = None

    # --- ReplayStore ---
    def add_batch(self, step_type, frame, embedding, action, reward, discount) -> None:
        self.writers.append(step_type, frame, embedding, action, reward, discount)

    def sample(self, batch_size: int, beta: float):
        self._check_request(batch_size, 1)
        return self._sample(beta)

    def sample_segments(self, batch_size: int, shape, beta: float):
        """B segment records (replay/sequences.py), their start keys and importance weights [B], as
        EmbeddingReplay.sample_segments gives them; one priority per segment."""
        self._check_request(batch_size, shape.segment_length)
        return self._sample(beta)

    def _sample(self, beta: float):
        batch, keys, probability, table_size, _, _ = self._next_batch()
        weights = importance_weights(probability.numpy(), table_size.numpy(), beta, self.layout.prioritized)
        return batch, keys.numpy(), weights

    def _check_request(self, batch_size: int, segment_length: int) -> None:
        if batch_size != self.batch_size:
            raise ValueError(f"this Reverb replay's dataset makes batches of {self.batch_size}, asked for {batch_size}")
        if segment_length != self.segment_length:
            raise ValueError(f"this Reverb replay's items are segments of {self.segment_length} step(s), asked for "
                             f"{segment_length}: its table's signature fixes the length")

    def sample_with_rows(self, beta: float):
        """A batch and the (lane, row) of each sample: for parity checks against the in-process replay."""
        batch, keys, probability, table_size, lanes, rows = self._next_batch()
        return batch, keys.numpy(), lanes.numpy(), rows.numpy()

    def _next_batch(self):
        if self._iterator is None:
            self._iterator = iter(sample_dataset(self.address, self.layout, self.input_keys, self.batch_size,
                                                 self.prefetch, self.sample_timeout_ms, self.segment_length))
        try:
            return next(self._iterator)
        except StopIteration:  # the sample timeout passed: the dataset has ended
            self._iterator = None
            raise NoBatchYet(f"no batch within {self.sample_timeout_ms} ms (the rate limiter holds sampling "
                             f"back until actors insert more)") from None

    def update_priorities(self, keys: np.ndarray, errors: np.ndarray) -> None:
        if not self.layout.prioritized:
            return
        errors = np.abs(np.asarray(errors, np.float64))
        if not np.all(np.isfinite(errors)):
            raise ValueError("sample errors contain NaN or inf; refusing to write them as priorities")
        priorities = errors + PRIORITY_EPSILON  # the table's sampler raises them to α
        # Items evicted since they were sampled are skipped by Reverb.
        self.client.mutate_priorities(TABLE, updates=dict(zip((int(k) for k in keys), priorities.tolist())))
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))

    @property
    def num_sampleable(self) -> int:
        self.writers.flush()
        return int(self.client.server_info()[TABLE].current_size)

    @property
    def num_stored(self) -> int:
        return int(np.minimum(self.writers.rows_written, self.layout.lane_capacity).sum())

    def bytes_per_step(self) -> float:
        spec = reverb_items.step_spec(self.layout)
        return float(sum(np.prod(s.shape, dtype=np.int64) * s.dtype.size for s in spec.values()))

    def save(self, directory: str) -> None:
        """The embedded server's Reverb checkpoint, moved into `directory/reverb` (so it is part of the
        run checkpoint the caller writes atomically), and a marker with the writers' counters."""
        self.writers.flush()
        written = self.client.checkpoint()
        os.makedirs(directory, exist_ok=True)
        if self.server is not None:
            shutil.move(written, os.path.join(directory, "reverb"))
            written = os.path.join(directory, "reverb")
        with open(os.path.join(directory, MARKER), "w") as f:
            json.dump({"reverb_checkpoint": written, "rows_written": self.writers.rows_written.tolist(),
                       "max_priority": self.max_priority}, f)

    def restore(self, directory: str) -> None:
        """The embedded server restarts from the checkpoint in `directory`; the counters come back.
        Open episodes need no closing: an item exists only once its n following rows were written."""
        with open(os.path.join(directory, MARKER)) as f:
            marker = json.load(f)
        if self.server is not None:
            self.close()
            self._connect(None, load_from=os.path.join(directory, "reverb"))
        self.writers.rows_written[:] = marker["rows_written"]
        self.max_priority = float(marker["max_priority"])

    def close(self) -> None:
        self.writers.close()
        if self.server is not None:
            self.server.stop()
            self.server = None
