"""Acting latency: the exported ONNX step model vs the TF policy step, same model, same frames.

Batch 1 with one ONNX thread (the game-loop case): p50/p99 per step, measured interleaved in one run.
TensorFlow keeps its default thread pools (its threads cannot be changed once it has started), which
if anything favours the TF side.
Batch 32: steps per second. Two TF figures: the TF-Agents policy step as users run it
(PyTFEagerPolicy over the greedy RiseQPolicy), and the bare tf.function step the exporter converts.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def _percentiles(times):
    ms = 1000 * np.asarray(times)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def export_default_model(directory: str):
    """A short rise-dqn Pong run with the default network, exported: (loaded policy, step, names, path)."""
    from rise_tf.export import step_model
    from rise_tf.config import make_config
    from rise_tf.train.trainer import Trainer

    run_dir = os.path.join(directory, "run")
    config = make_config("rise-dqn", "Pong", env={"num_envs": 2}, replay={"capacity": 2_000},
                         train={"frames": 400, "warmup_frames": 400, "eval_every_frames": 0})
    trainer = Trainer(config, run_dir, progress=False)  # default network, a checkpoint to export
    trainer.run()
    trainer.close()
    loaded = step_model.load_policy(run_dir)
    path = os.path.join(directory, "model.onnx")
    step, names = step_model.export_onnx(loaded, path)
    return loaded, step, names, path


def measure(steps: int = 300) -> dict:
    import tensorflow as tf

    from rise_runtime import contract
    from rise_runtime.runner import Policy

    with tempfile.TemporaryDirectory() as directory:
        loaded, step, names, path = export_default_model(directory)
        policy = Policy.load(path, threads=1)
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, (steps, 84, 84), dtype=np.uint8)
        state = [tf.zeros([1] + list(s.shape[1:]), s.dtype) for s in step.input_signature[2:]]
        onnx_times, tf_times = [], []
        for t in range(steps + 20):
            frame = frames[t % steps][None]
            start = time.perf_counter()
            policy.step_frames(frame)
            onnx_elapsed = time.perf_counter() - start
            start = time.perf_counter()
            out = step(tf.constant(frame), tf.constant([t == 0]), *state)
            _ = out[contract.ACTION].numpy()
            tf_elapsed = time.perf_counter() - start
            state = [out[contract.state_out(n)] for n in names]
            if t >= 20:  # warm-up excluded
                onnx_times.append(onnx_elapsed)
                tf_times.append(tf_elapsed)
        # The TF policy step as a TF-Agents user runs it: PyTFEagerPolicy over the greedy policy.
        from tf_agents.policies import py_tf_eager_policy
        from tf_agents.trajectories import time_step as ts

        py_policy = py_tf_eager_policy.PyTFEagerPolicy(loaded.policy, use_tf_function=True, batch_time_steps=False)
        policy_state = py_policy.get_initial_state(1)
        policy_times = []
        for t in range(steps + 20):
            time_step = ts.TimeStep(np.array([ts.StepType.FIRST if t == 0 else ts.StepType.MID], np.int32),
                                    np.zeros(1, np.float32), np.ones(1, np.float32), frames[t % steps][None])
            start = time.perf_counter()
            action_step = py_policy.action(time_step, policy_state)
            elapsed = time.perf_counter() - start
            policy_state = action_step.state
            if t >= 20:
                policy_times.append(elapsed)
        policy_p50, policy_p99 = _percentiles(policy_times)
        onnx_p50, onnx_p99 = _percentiles(onnx_times)
        tf_p50, tf_p99 = _percentiles(tf_times)
        batch = Policy.load(path, threads=os.cpu_count() or 1)
        batch_frames = rng.integers(0, 256, (32, 84, 84), dtype=np.uint8)
        batch.step_frames(batch_frames)
        start = time.perf_counter()
        repeats = 30
        for _ in range(repeats):
            batch.step_frames(batch_frames)
        batch32 = repeats * 32 / (time.perf_counter() - start)
        from benchmarks import server_latency

        server = server_latency.compare(path)
    return {"onnx_b1_p50_ms": onnx_p50, "onnx_b1_p99_ms": onnx_p99, "tf_b1_p50_ms": tf_p50, "tf_b1_p99_ms": tf_p99,
            "tf_over_onnx_p50": tf_p50 / onnx_p50, "tf_policy_b1_p50_ms": policy_p50,
            "tf_policy_b1_p99_ms": policy_p99, "tf_policy_over_onnx_p50": policy_p50 / onnx_p50,
            "onnx_b32_steps_per_s": batch32, "server": server, "providers": policy.providers}
