"""Saving and restoring a replay's contents: only the slots in use and their leaf priorities, so a
short run's checkpoint holds megabytes, not the preallocated buffer."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

import numpy as np

from rise_tf.replay.prioritized import PrioritizedSampler
from rise_tf.replay.ring import LaneRings

FORMAT_VERSION = 3  # 3: only the slots in use, leaf priorities (2: the whole buffer and tree)
DATA_FILE = "replay.npz"
META_FILE = "replay.json"


def _leaves(rings: LaneRings, used: int) -> np.ndarray:
    lanes = np.arange(rings.layout.num_lanes)[:, None]
    return (lanes * rings.layout.lane_capacity + np.arange(used)).ravel()


def save(directory: str, rings: LaneRings, sampler: PrioritizedSampler, input_keys: Sequence[str]) -> None:
    """Writes into `directory` (the caller makes the directory atomic)."""
    os.makedirs(directory, exist_ok=True)
    used = rings.slots_in_use()
    np.savez(os.path.join(directory, DATA_FILE), priorities=sampler.tree.get(_leaves(rings, used)),
             **{name: getattr(rings, name)[:, :used] for name in LaneRings.SLOT_ARRAYS},
             **{name: getattr(rings, name) for name in LaneRings.LANE_ARRAYS})
    meta = {"format_version": FORMAT_VERSION, "layout": dataclasses.asdict(rings.layout),
            "input_keys": list(input_keys), "max_priority": sampler.max_priority, "slots_in_use": used,
            "rng": sampler.rng.bit_generator.state}
    with open(os.path.join(directory, META_FILE), "w") as f:
        json.dump(meta, f)


def restore(directory: str, rings: LaneRings, sampler: PrioritizedSampler, input_keys: Sequence[str]) -> None:
    """Into freshly built rings and sampler of the same layout; closes the open episodes."""
    with open(os.path.join(directory, META_FILE)) as f:
        meta = json.load(f)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"replay in {directory} has format {meta.get('format_version')}, "
                         f"this rise-tf reads {FORMAT_VERSION}")
    if meta["layout"] != dataclasses.asdict(rings.layout) or meta["input_keys"] != list(input_keys):
        raise ValueError(f"replay in {directory} was written with another layout; resume with the "
                         f"run's own config or start without --restore-replay")
    used = meta["slots_in_use"]
    with np.load(os.path.join(directory, DATA_FILE)) as data:
        for name in LaneRings.SLOT_ARRAYS:
            getattr(rings, name)[:, :used] = data[name]
        for name in LaneRings.LANE_ARRAYS:
            getattr(rings, name)[...] = data[name]
        if used:
            sampler.tree.set(_leaves(rings, used), data["priorities"])  # internal sums rebuilt from the leaves
    sampler.max_priority = meta["max_priority"]
    sampler.rng.bit_generator.state = meta["rng"]
    rings.close_open_episodes()
