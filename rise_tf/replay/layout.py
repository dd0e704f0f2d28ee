"""The replay's shape: step types, the per-lane layout and the checks it must pass."""
from __future__ import annotations

import dataclasses

import numpy as np

FIRST, MID, LAST = 0, 1, 2  # TF-Agents StepType values


def min_lane_capacity(*, window_length: int, frame_stack: int, n_step: int) -> int:
    """Steps each lane must hold: the longest input window, the n-step lookahead, and two rows of
    slack (the row being written and the episode's LAST row). The config checks by this too."""
    return max(window_length, frame_stack) + n_step + 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplayLayout:
    """Shapes and learning constants the sampler needs; saved next to the buffer's contents.
    No defaults: the run config is their one source (the builder passes every field)."""

    num_lanes: int
    capacity: int  # total steps over all lanes
    frame_size: int
    embedding_size: int  # 0 when the network has no frozen encoder
    embedding_dtype: str
    frame_stack: int
    window_length: int
    n_step: int
    gamma: float
    reward_clip: float  # rewards clipped to [-c, c] in the targets; 0 disables clipping
    prioritized: bool
    priority_exponent: float  # α

    def __post_init__(self):
        need = min_lane_capacity(window_length=self.window_length, frame_stack=self.frame_stack, n_step=self.n_step)
        checks = [
            (self.num_lanes >= 1, f"num_lanes must be >= 1, got {self.num_lanes}"),
            (self.capacity >= self.num_lanes * need,
             f"capacity {self.capacity} is too small for {self.num_lanes} lanes: each lane needs at least "
             f"max(window, frame stack) + n_step + 2 = {need} steps"),
            (self.embedding_size >= 0, f"embedding_size must be >= 0, got {self.embedding_size}"),
            (self.embedding_dtype in ("float16", "float32"),
             f"embedding_dtype must be float16 or float32, got {self.embedding_dtype!r}"),
            (self.frame_stack >= 1, f"frame_stack must be >= 1, got {self.frame_stack}"),
            (self.window_length >= 1, f"window_length (k) must be >= 1, got {self.window_length}"),
            (self.n_step >= 1, f"n_step must be >= 1, got {self.n_step}"),
            (0.0 < self.gamma <= 1.0, f"gamma must be in (0, 1], got {self.gamma}"),
            (self.reward_clip >= 0, f"reward_clip must be >= 0, got {self.reward_clip}"),
            (self.priority_exponent >= 0, f"priority_exponent must be >= 0, got {self.priority_exponent}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def lane_capacity(self) -> int:
        return self.capacity // self.num_lanes

    def estimated_bytes(self) -> int:
        """Memory the buffer allocates for this layout (frames, embeddings, scalars, sum tree)."""
        slots = self.num_lanes * self.lane_capacity
        per_slot = (self.frame_size ** 2 + self.embedding_size * np.dtype(self.embedding_dtype).itemsize
                    + 4 + 4 + 4 + 1 + 8 + 1)  # action, reward, discount, step type, episode start, sampleable
        tree_leaves = 1 << int(np.ceil(np.log2(max(slots, 2))))
        return slots * per_slot + 2 * tree_leaves * 8
