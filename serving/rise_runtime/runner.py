"""The TensorFlow-free policy runner: an exported RISE step model on onnxruntime.

    policy = Policy.load("pong.onnx")          # configures itself from the model's metadata
    policy.reset()
    action = policy.act(screen, previous_screen)  # raw RGB screens of the last agent step

Imports numpy, onnxruntime and this package's model contract and frame preprocessing — never
TensorFlow; a test imports it with TensorFlow blocked.
The caller's loop repeats each action for `policy.preprocessing.action_repeat` emulator frames and
passes the last two screens, exactly as training did (with one screen, no max-pool is applied).
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import onnxruntime as ort

from rise_runtime.preprocessing import PreprocessingConfig, preprocess_screens, standard_screen
from rise_runtime import contract

DEVICES = ("cpu", "cuda", "auto")


class ModelError(ValueError):
    """The file is not a usable RISE step model; the message says why and what to do."""


def _session(path: str, threads: int, device: str) -> ort.InferenceSession:
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {DEVICES}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    elif device == "cuda":
        raise ValueError("device='cuda' needs onnxruntime-gpu and a visible GPU: install the runtime's GPU build in "
                         "its own venv (RISE_RUNTIME_GPU=1 pip install ./serving, BUILD.md) and check the NVIDIA "
                         f"driver; this onnxruntime offers {available}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types for unreadable models
        raise ModelError(f"{path} is not a valid ONNX model ({str(error).splitlines()[0][:200]}). "
                         f"Export it again with rise-export.") from None


class Policy:
    """One exported policy; keeps the recurrent state of `batch_size` games between calls."""

    def __init__(self, session: ort.InferenceSession, path: str):
        self.path = path
        self._session = session
        meta = session.get_modelmeta().custom_metadata_map
        missing = [key for key in contract.REQUIRED_METADATA if key not in meta]
        if missing:
            raise ModelError(f"{path} is not a RISE step model (metadata {missing} missing). Export a "
                             f"rise-tf checkpoint with rise-export.")
        version = meta[contract.META_FORMAT_VERSION]
        if version != str(contract.FORMAT_VERSION):
            raise ModelError(f"{path} has step-model format {version}; this runner reads format "
                             f"{contract.FORMAT_VERSION}. Use the rise-tf version that exported it, or re-export.")
        self.metadata: Dict[str, str] = dict(meta)
        self.game = meta[contract.META_GAME]
        # How to rebuild the env (kind, flicker, ...); None for models exported before it was recorded.
        self.env_description: Optional[Dict] = json.loads(meta[contract.META_ENV]) if contract.META_ENV in meta else None
        self.action_meanings: List[str] = json.loads(meta[contract.META_ACTION_MEANINGS])
        self.preprocessing = PreprocessingConfig.from_dict(json.loads(meta[contract.META_PREPROCESSING]))
        self.state_layout = contract.decode_state_layout(meta[contract.META_STATE])
        self.num_actions = len(self.action_meanings)
        self._output_names = [o.name for o in session.get_outputs()]
        self._check_graph(session)
        self.batch_size = 0
        self.q_values: Optional[np.ndarray] = None  # of the last call, [B, A]
        self.reset(1)

    def _check_graph(self, session: ort.InferenceSession) -> None:
        """The tensors the contract and the model's own state layout promise (docs/model-contract.md)."""
        names = [entry["name"] for entry in self.state_layout]
        wanted_inputs = [contract.FRAME, contract.RESET] + [contract.state_in(n) for n in names]
        wanted_outputs = [contract.Q_VALUES, contract.ACTION] + [contract.state_out(n) for n in names]
        inputs = {i.name for i in session.get_inputs()}
        missing = [n for n in wanted_inputs if n not in inputs] + [n for n in wanted_outputs
                                                                   if n not in self._output_names]
        unexpected = sorted(inputs - set(wanted_inputs))
        if missing or unexpected:
            raise ModelError(f"{self.path} has RISE metadata, but its graph does not match it: "
                             + (f"missing {missing}" if missing else "")
                             + ("; " if missing and unexpected else "")
                             + (f"unexpected inputs {unexpected}" if unexpected else "")
                             + ". Export the checkpoint again with rise-export.")

    @classmethod
    def load(cls, path: str, threads: int = 1, device: str = "cpu") -> "Policy":
        """Loads an exported model. device: 'cpu' (default), 'cuda' (onnxruntime-gpu), or 'auto'."""
        if os.path.isdir(path):
            models = sorted(name for name in os.listdir(path) if name.endswith(".onnx"))
            hint = (f"it holds {', '.join(models[:5])}: give one of them" if models else
                    f"give the .onnx file rise-export wrote (for a training run: rise-export {path} --out model.onnx)")
            raise FileNotFoundError(f"{path} is a folder, not a model; {hint}")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no model at {path}; create one with rise-export RUN_DIR --out {path}")
        return cls(_session(path, threads, device), path)

    @property
    def providers(self) -> List[str]:
        return self._session.get_providers()

    def zero_state(self, batch_size: int) -> Dict[str, np.ndarray]:
        return {entry["name"]: np.zeros([batch_size] + entry["shape"], entry["dtype"]) for entry in self.state_layout}

    def reset(self, batch_size: int = 1) -> None:
        """Forgets every game's memory; the next call starts new episodes for `batch_size` games."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._state = self.zero_state(batch_size)
        self._first = np.ones(batch_size, bool)

    def preprocess(self, screen: np.ndarray, previous_screen: Optional[np.ndarray] = None, *, layout: Optional[str] = None,
                   bottom_up: bool = False) -> np.ndarray:
        """Raw screen(s) in `layout` (rgb, bgr, rgba, bgra, gray; None: RGB [H, W, 3] or gray [H, W] by
        shape; `bottom_up`: the last row first, as OpenGL reads back) -> the model's frame [S, S]."""
        screen = standard_screen(screen, layout, bottom_up)
        if previous_screen is not None:
            previous_screen = standard_screen(previous_screen, layout, bottom_up)
        return preprocess_screens(screen, previous_screen, self.preprocessing)

    def act(self, screen: np.ndarray, previous_screen: Optional[np.ndarray] = None, *, layout: Optional[str] = None,
            bottom_up: bool = False) -> int:
        """One game: raw screen(s) uint8 in `layout` (RGB [H, W, 3] or gray [H, W] by default; see
        `preprocess`) -> greedy action index."""
        if self.batch_size != 1:
            self.reset(1)
        frame = self.preprocess(screen, previous_screen, layout=layout, bottom_up=bottom_up)
        return int(self.step_frames(frame[None])[0])

    def act_batch(self, screens: Sequence[np.ndarray], previous_screens: Optional[Sequence[np.ndarray]] = None,
                  new_episode: Optional[Sequence[bool]] = None, *, layout: Optional[str] = None,
                  bottom_up: bool = False) -> np.ndarray:
        """Many games at once: one screen per game -> actions [B]. The batch size is fixed by the
        first call (or reset(batch_size)); `new_episode[i]` wipes game i's memory first."""
        previous_screens = previous_screens if previous_screens is not None else [None] * len(screens)
        if len(previous_screens) != len(screens):
            raise ValueError("screens and previous_screens differ in length")
        frames = np.stack([self.preprocess(s, p, layout=layout, bottom_up=bottom_up)
                           for s, p in zip(screens, previous_screens)])
        return self.step_frames(frames, new_episode)

    def step_frames(self, frames: np.ndarray, new_episode: Optional[Sequence[bool]] = None) -> np.ndarray:
        """Already-preprocessed frames [B, H, W] uint8 -> actions [B]; updates the kept state."""
        size = self.preprocessing.frame_size
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
            raise TypeError(f"frames must be a uint8 numpy array, got {getattr(frames, 'dtype', type(frames))}")
        if frames.ndim != 3 or frames.shape[1:] != (size, size):
            raise ValueError(f"frames must be shaped [B, {size}, {size}], got {frames.shape}")
        if frames.shape[0] != self.batch_size:
            self.reset(frames.shape[0])
        reset = self._first.copy()
        if new_episode is not None:
            reset |= np.asarray(new_episode, bool)
        actions, self.q_values, self._state = self.run_step(frames, reset, self._state)
        self._first[:] = False
        return actions

    def run_step(self, frames: np.ndarray, reset: np.ndarray, state: Dict[str, np.ndarray]):
        """Stateless step: (frames [B, H, W] uint8, reset [B] bool, state) -> (actions, q_values, new state).
        For callers that keep their own states, e.g. a server batching many sessions."""
        feeds = {contract.FRAME: frames, contract.RESET: reset}
        feeds.update({contract.state_in(name): value for name, value in state.items()})
        outputs = dict(zip(self._output_names, self._session.run(None, feeds)))
        new_state = {name: outputs[contract.state_out(name)] for name in state}
        return outputs[contract.ACTION], outputs[contract.Q_VALUES], new_state
