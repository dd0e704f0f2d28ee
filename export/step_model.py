"""Checkpoint -> ONNX step model, with metadata and a parity check against the TF policy.

The step function reuses `RiseQPolicy.next_state` (the exact acting-time state update: reset,
frame-stack shift, ϑ once per frame, embedding rounding, window shift) and the same network, so the
exported graph is the trained policy, not a re-implementation of it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from rise_runtime import contract
from rise_tf.networks.rise_q_network import input_frame_size
from rise_tf.policies.rise_policy import RiseQPolicy
from rise_tf import builder
from rise_tf.parts import checkpoints
from rise_tf.envs.specs import frame_specs
from rise_tf.config import RunConfig, env_description
from rise_tf.run_dir import BEST_CHECKPOINT, best_checkpoint_missing, load_env_info, load_run_config, write_file_atomic


class ExportError(RuntimeError):
    """Export cannot proceed or failed its checks; the message names the cause and the fix."""


@dataclasses.dataclass
class LoadedPolicy:
    config: RunConfig
    network: object
    policy: RiseQPolicy
    action_meanings: List[str]
    checkpoint: str
    frames_trained: int

    def epsilon_greedy(self, epsilon: float) -> RiseQPolicy:
        """The same network acting ε-greedily (the evaluation policy of a run trained with --eval-epsilon)."""
        return RiseQPolicy(self.policy.time_step_spec, self.policy.action_spec, self.network,
                           embedding_dtype=self.config.network.embedding_dtype, epsilon=epsilon,
                           stochastic_network=False)


def load_policy(run_dir: str, checkpoint: Optional[str] = None) -> LoadedPolicy:
    """Rebuilds the run's network from its config and restores a checkpoint (the latest by default;
    "best": the best evaluation's, checkpoints/best)."""
    config = load_run_config(run_dir)
    if checkpoint == BEST_CHECKPOINT:
        checkpoint = checkpoints.best_checkpoint(run_dir)
        if checkpoint is None:
            raise ExportError(best_checkpoint_missing(run_dir))
    if checkpoint is not None and not os.path.isdir(checkpoint):
        found = [os.path.basename(p) for p in checkpoints.list_checkpoints(run_dir)]
        raise ExportError(f"checkpoint {checkpoint} does not exist; {run_dir} has "
                          f"{', '.join(found) if found else 'no checkpoints'} under {checkpoints.checkpoint_dir(run_dir)}")
    if checkpoint is None and not checkpoints.list_checkpoints(run_dir):
        raise ExportError(f"{run_dir} has no checkpoint yet; train first (rise-train --resume {run_dir}).")
    info = load_env_info(run_dir)
    if info is not None:
        meanings = info["action_meanings"]
    else:  # runs older than env.json: ask the env itself
        env = builder.make_env(config, num_envs=1, training=False)
        meanings = env.envs[0].action_meanings
        env.close()
    observation_spec, action_spec = frame_specs(config.env.frame_size, len(meanings))
    time_step_spec = ts.time_step_spec(observation_spec)
    network = builder.make_network(config, len(meanings))

    def restore_online_network(path):  # the online network only
        return checkpoints.restore(path, {"q_network": network}, partial=True)

    if checkpoint is not None:  # the one the user named: no fallback
        path, state = checkpoint, restore_online_network(checkpoint)
    else:  # the newest that is not damaged
        state, path = checkpoints.restore_newest_good(run_dir, restore_online_network,
                                                      log=lambda line: print(line, file=sys.stderr))
    # The greedy policy on the deterministic network: no ε, no noise, the quantile-midpoint taus.
    policy = RiseQPolicy(tensor_spec.from_spec(time_step_spec), tensor_spec.from_spec(action_spec), network,
                         embedding_dtype=config.network.embedding_dtype, epsilon=None, stochastic_network=False)
    return LoadedPolicy(config, network, policy, meanings, path, int(state.get("frames", 0)))


def step_signature(network) -> Tuple[List[str], List[tf.TensorSpec]]:
    spec = network.input_tensor_spec
    frame_size = input_frame_size(spec)
    names = list(spec)
    signature = [tf.TensorSpec([None, frame_size, frame_size], tf.uint8, contract.FRAME),
                 tf.TensorSpec([None], tf.bool, contract.RESET)]
    signature += [tf.TensorSpec([None] + list(spec[n].shape), spec[n].dtype, contract.state_in(n)) for n in names]
    return names, signature


def make_step_function(loaded: LoadedPolicy):
    names, signature = step_signature(loaded.network)

    @tf.function(input_signature=signature)
    def step(frame, reset, *state):
        new_state, _ = loaded.policy.next_state(frame, reset, dict(zip(names, state)))
        q_values, _ = loaded.network(new_state)
        outputs = {contract.Q_VALUES: q_values,
                   contract.ACTION: tf.argmax(q_values, axis=-1, output_type=tf.int32)}
        outputs.update({contract.state_out(n): new_state[n] for n in names})
        return outputs

    return step, names, signature


def metadata(loaded: LoadedPolicy, names: List[str]) -> Dict[str, str]:
    spec = loaded.network.input_tensor_spec
    config = loaded.config
    return {
        contract.META_FORMAT_VERSION: str(contract.FORMAT_VERSION),
        contract.META_GAME: config.env_name,
        contract.META_ENV: json.dumps(env_description(config)),
        contract.META_ALGO: config.algo,
        contract.META_ACTION_MEANINGS: json.dumps(loaded.action_meanings),
        contract.META_WINDOW_LENGTH: str(config.network.window_length),
        contract.META_EMBEDDING_SIZE: str(config.network.embedding_size if config.network.memory == "rise" else 0),
        contract.META_MEMORY: config.network.memory,
        contract.META_PREPROCESSING: json.dumps(builder.preprocessing_config(config).to_dict()),
        contract.META_STATE: contract.encode_state_layout(
            [{"name": n, "shape": list(spec[n].shape), "dtype": spec[n].dtype.name} for n in names]),
        contract.META_FRAMES_TRAINED: str(loaded.frames_trained),
    }


def export_onnx(loaded: LoadedPolicy, out_path: str):
    """Converts the step function with tf2onnx, adds the metadata, checks and writes it atomically."""
    import onnx
    import tf2onnx

    step, names, signature = make_step_function(loaded)
    model, _ = tf2onnx.convert.from_function(step, input_signature=signature, opset=contract.OPSET)
    for key, value in metadata(loaded, names).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    name_batch_axis(model)
    drop_unused_opsets(model)
    model.doc_string = (f"RISE step model ({loaded.config.algo}, {loaded.config.network.memory} memory) for "
                        f"{loaded.config.env_name}, {loaded.frames_trained:,} frames trained. Inputs, outputs, "
                        f"state and metadata: docs/model-contract.md of rise-tf.")
    model.model_version = loaded.frames_trained  # which checkpoint: grows as the run trains
    onnx.checker.check_model(model)
    write_file_atomic(out_path, model.SerializeToString())
    return step, names


def drop_unused_opsets(model) -> None:
    """tf2onnx imports the `ai.onnx.ml` opset whether or not a node uses it; a runtime then has to
    support a domain the model never calls. Only the domains the graph's nodes use stay (and the
    default one, which the checker requires)."""
    used = {node.domain for node in model.graph.node} | {""}
    kept = [entry for entry in model.opset_import if entry.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def name_batch_axis(model) -> None:
    """tf2onnx names the dynamic batch axis unk__<n>, different per tensor; every input and output
    gets the one name `batch` instead, so a reader sees that they share it."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = contract.BATCH_AXIS


def export_saved_model(loaded: LoadedPolicy, directory: str) -> None:
    """A TF-Agents PolicySaver SavedModel of the greedy policy, for TensorFlow users
    (tf.saved_model.load(directory).action(time_step, policy_state))."""
    from tf_agents.policies import policy_saver

    policy_saver.PolicySaver(loaded.policy, batch_size=None).save(directory)


def rollout_frames(loaded: LoadedPolicy, steps: int, seed: int = 123,
                   env_factory: Optional[builder.EnvFactory] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Real frames from the run's game under the greedy TF policy, with a forced reset at steps // 2.
    `env_factory`: the factory a Python-API run was trained with (its env is not registered).

    Returns frames [steps, H, W] uint8 and reset flags [steps] bool.
    """
    env = builder.make_env(loaded.config, num_envs=1, seed_offset=seed, training=False, env_factory=env_factory)
    state = loaded.policy.get_initial_state(1)
    act = tf.function(loaded.policy.action)
    time_step = env.reset()
    frames, resets = [], []
    for t in range(steps):
        if t == steps // 2:
            time_step = env.reset()  # a new episode mid-rollout: the step model must wipe its memory
        frames.append(time_step.observation[0].copy())
        resets.append(bool(time_step.is_first()[0]))
        out = act(tf.nest.map_structure(tf.convert_to_tensor, time_step), state)
        state = out.state
        time_step = env.step(out.action.numpy())
    env.close()
    return np.stack(frames), np.array(resets)


def random_frames(loaded: LoadedPolicy, steps: int, seed: int = 123) -> Tuple[np.ndarray, np.ndarray]:
    """Uniform random frames [steps, H, W] uint8 with resets at 0 and steps // 2: the parity check when
    the run's env cannot be built here (its package is not installed); the step model's arithmetic is
    the same for any frames."""
    size = loaded.config.env.frame_size
    frames = np.random.default_rng(seed).integers(0, 256, (steps, size, size), dtype=np.uint8)
    resets = np.zeros(steps, bool)
    resets[[0, steps // 2]] = True
    return frames, resets


@dataclasses.dataclass
class ParityReport:
    steps: int
    resets: int
    max_abs_q_difference: float
    action_mismatches: int  # greedy actions that differ where TF's top-2 Q gap exceeds the tolerance
    tolerance: float
    # The state the models carry to the next step (frame stack, embedding window, mask), per state
    # tensor: each side feeds its own state back, so a drift there shows before it reaches Q.
    max_abs_state_difference: Dict[str, float] = dataclasses.field(default_factory=dict)
    # State elements that differ by more than the tolerance plus one rounding step of their dtype (a
    # float16 embedding may round one ulp apart from float32 values that agree to 1e-7); integer and
    # boolean state (frames, masks) must agree exactly.
    state_mismatches: Dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return (self.max_abs_q_difference <= self.tolerance and self.action_mismatches == 0
                and not any(self.state_mismatches.values()))


def stored_state_dtypes(config: RunConfig) -> Dict[str, np.dtype]:
    """State tensors whose values are rounded to a narrower dtype before they are carried (the frozen
    embeddings, when the run stores them in float16)."""
    if config.network.memory != "rise":
        return {}
    return {"embedding_window": np.dtype(config.network.embedding_dtype)}


def check_parity(step, names, onnx_path: str, frames: np.ndarray, resets: np.ndarray,
                 tolerance: float = 1e-4, rounded_to: Optional[Dict[str, np.dtype]] = None) -> ParityReport:
    """Steps the TF step function and the ONNX model side by side over the same frames. rounded_to
    (stored_state_dtypes): a float state may differ by one rounding step of that dtype."""
    rounded_to = rounded_to or {}
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    state_specs = step.input_signature[2:]  # after frame and reset, in `names` order
    tf_state = [np.zeros([1] + list(s.shape[1:]), s.dtype.as_numpy_dtype) for s in state_specs]
    onnx_state = [s.copy() for s in tf_state]
    worst, mismatches = 0.0, 0
    worst_state = {n: 0.0 for n in names}
    state_mismatches = {n: 0 for n in names}
    for frame, reset in zip(frames, resets):
        frame, reset = frame[None], np.array([reset])
        tf_out = step(tf.constant(frame), tf.constant(reset), *[tf.constant(s) for s in tf_state])
        feeds = {contract.FRAME: frame, contract.RESET: reset}
        feeds.update({contract.state_in(n): s for n, s in zip(names, onnx_state)})
        onnx_out = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        tf_q = tf_out[contract.Q_VALUES].numpy()
        worst = max(worst, float(np.max(np.abs(tf_q - onnx_out[contract.Q_VALUES]))))
        top_two = np.sort(tf_q[0])[-2:] if tf_q.shape[1] > 1 else np.array([0.0, np.inf])
        if onnx_out[contract.ACTION][0] != tf_out[contract.ACTION].numpy()[0] and top_two[1] - top_two[0] > tolerance:
            mismatches += 1
        tf_state = [tf_out[contract.state_out(n)].numpy() for n in names]
        onnx_state = [onnx_out[contract.state_out(n)] for n in names]
        for name, tf_value, onnx_value in zip(names, tf_state, onnx_state):
            difference = np.abs(tf_value.astype(np.float64) - onnx_value.astype(np.float64))
            worst_state[name] = max(worst_state[name], float(difference.max()) if difference.size else 0.0)
            if np.issubdtype(tf_value.dtype, np.floating):
                stored = np.abs(tf_value).astype(rounded_to.get(name, tf_value.dtype))
                allowed = tolerance + np.spacing(stored).astype(np.float64)  # one rounding step of the stored dtype
            else:
                allowed = np.zeros(tf_value.shape)
            state_mismatches[name] += int((difference > allowed).sum())
    return ParityReport(len(frames), int(resets.sum()), worst, mismatches, tolerance, worst_state, state_mismatches)

