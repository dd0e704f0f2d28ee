"""Batch assembly: from sampled (lane, row) pairs to the learner's inputs and targets.

For a sampled step t: the frame stack at t, the embedding window ending at t (k steps, zeroed and
masked before the episode's first step), the same at the bootstrap step b = t + m, the n-step
return over m = min(n, steps to the episode's end) clipped rewards, and the bootstrap discount
γ^m ∏ d (0 after a termination or a life loss, γ^m after a truncation).
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from rise_tf.replay.layout import LAST
from rise_tf.replay.ring import LaneRings
from rise_tf.replay.targets import n_step_targets

INPUT_KEYS = ("frame_stack", "embedding_window", "frame_window", "window_mask")


def assemble(rings: LaneRings, input_keys: Sequence[str], lanes: np.ndarray, rows: np.ndarray) -> Dict[str, np.ndarray]:
    layout, cap = rings.layout, rings.layout.lane_capacity
    n = layout.n_step
    episode_start = rings.episode_starts[lanes, rows % cap]  # [B]
    # Walk forward up to n steps, stopping after the episode's LAST row.
    offsets = np.arange(1, n + 1)
    ahead = rows[:, None] + offsets  # [B, n]
    ahead_clipped = np.minimum(ahead, rings.rows_written[lanes, None] - 1)
    is_last = rings.step_types[lanes[:, None], ahead_clipped % cap] == LAST  # [B, n]
    first_last = np.where(is_last.any(axis=1), is_last.argmax(axis=1) + 1, n)  # m in 1..n
    steps = rows[:, None] + np.arange(n)  # rows t .. t+n-1  [B, n]
    step_slots = np.minimum(steps, rings.rows_written[lanes, None] - 1) % cap
    rewards = rings.rewards[lanes[:, None], step_slots]
    if layout.reward_clip > 0:
        rewards = np.clip(rewards, -layout.reward_clip, layout.reward_clip)
    discounts = rings.discounts[lanes[:, None], step_slots]
    returns, bootstrap_discount = n_step_targets(rewards, discounts, first_last, layout.gamma)
    bootstrap_rows = rows + first_last
    return {
        "observation": inputs_at(rings, input_keys, lanes, rows, episode_start),
        "action": rings.actions[lanes, rows % cap],
        "n_step_return": returns,
        "bootstrap_discount": bootstrap_discount,
        "next_observation": inputs_at(rings, input_keys, lanes, bootstrap_rows, episode_start),
    }


def inputs_at(rings: LaneRings, input_keys: Sequence[str], lanes, rows, episode_start) -> Dict[str, np.ndarray]:
    """Network inputs ending at `rows`; rows before the episode start read as zeros."""
    layout, cap = rings.layout, rings.layout.lane_capacity
    out = {}

    def window(length):
        past = rows[:, None] - np.arange(length - 1, -1, -1)  # [B, length], oldest first
        valid = past >= episode_start[:, None]
        return past % cap, valid

    if "frame_stack" in input_keys:
        slots, valid = window(layout.frame_stack)
        stack = rings.frames[lanes[:, None], slots] * valid[:, :, None, None].astype(np.uint8)
        out["frame_stack"] = np.ascontiguousarray(stack.transpose(0, 2, 3, 1))  # [B, H, W, S]
    if "embedding_window" in input_keys or "frame_window" in input_keys:
        slots, valid = window(layout.window_length)
        out["window_mask"] = valid.astype(np.float32)  # [B, k]
        if "embedding_window" in input_keys:
            embedded = rings.embeddings[lanes[:, None], slots].astype(np.float32)
            out["embedding_window"] = embedded * valid[:, :, None]  # [B, k, E]
        if "frame_window" in input_keys:
            out["frame_window"] = rings.frames[lanes[:, None], slots] * valid[:, :, None, None].astype(np.uint8)
    return out
