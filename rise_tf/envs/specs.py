"""The specs every rise-tf lane has: one uint8 frame in, one discrete action out (TF-Agents array specs)."""
from __future__ import annotations

import numpy as np
from tf_agents.specs import array_spec


def frame_specs(frame_size: int, num_actions: int):
    """(observation spec, action spec) of every rise-tf lane: one uint8 frame, one discrete action."""
    return (array_spec.BoundedArraySpec((frame_size, frame_size), np.uint8, 0, 255, name="frame"),
            array_spec.BoundedArraySpec((), np.int32, 0, num_actions - 1, name="action"))
