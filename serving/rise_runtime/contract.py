"""The export contract: every ONNX tensor name, the opset and the metadata keys, in one place.

TensorFlow-free: the exporter writes by it and the runner (rise_runtime) reads by it.

The step model does one whole acting step:
    inputs   frame [B, H, W] uint8 (preprocessed), reset [B] bool (true on an episode's first frame),
             state_in_<name> for each recurrent-state tensor (frame stack, embedding window, mask)
    outputs  q_values [B, A] float32, action [B] int32 (greedy), state_out_<name> (feed back next step)
A runtime loops `state = step(frame, reset, state)`, starting from zeros; the batch axis is dynamic.
"""
from __future__ import annotations

import json
from typing import Dict, List

FORMAT_VERSION = 1
OPSET = 17

BATCH_AXIS = "batch"  # the name of every input's and output's first (dynamic) axis

FRAME = "frame"
RESET = "reset"
Q_VALUES = "q_values"
ACTION = "action"
STATE_IN_PREFIX = "state_in_"
STATE_OUT_PREFIX = "state_out_"

# Metadata (ONNX metadata_props), all values strings; JSON where structured.
META_FORMAT_VERSION = "rise.format_version"
META_GAME = "rise.game"  # the Atari game, memory task or gymnasium id
META_ENV = "rise.env"  # JSON: {"kind": atari | memory | gym, "name", and what rebuilds the env (flicker, ...)}
META_ALGO = "rise.algo"
META_ACTION_MEANINGS = "rise.action_meanings"  # JSON list
META_WINDOW_LENGTH = "rise.window_length"
META_EMBEDDING_SIZE = "rise.embedding_size"
META_MEMORY = "rise.memory"
META_PREPROCESSING = "rise.preprocessing"  # JSON of PreprocessingConfig
META_STATE = "rise.state"  # JSON list of {"name", "shape" (no batch axis), "dtype"}
META_FRAMES_TRAINED = "rise.frames_trained"
REQUIRED_METADATA = (META_FORMAT_VERSION, META_GAME, META_ACTION_MEANINGS, META_WINDOW_LENGTH,
                     META_EMBEDDING_SIZE, META_MEMORY, META_PREPROCESSING, META_STATE)


def state_in(name: str) -> str:
    return STATE_IN_PREFIX + name


def state_out(name: str) -> str:
    return STATE_OUT_PREFIX + name


def encode_state_layout(layout: List[Dict]) -> str:
    return json.dumps(layout)


def decode_state_layout(text: str) -> List[Dict]:
    return json.loads(text)
