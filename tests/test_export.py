"""ONNX step model: parity with the TF policy on real frames (with a reset), metadata, CLI."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from rise_runtime import contract
from rise_tf.export import step_model
from rise_tf.export.cli import main as export_main
from conftest import tiny_run


def test_parity_over_real_frames_with_a_reset_in_the_middle(pong_run, tmp_path):
    loaded = step_model.load_policy(pong_run)
    path = str(tmp_path / "pong.onnx")
    step, names = step_model.export_onnx(loaded, path)
    frames, resets = step_model.rollout_frames(loaded, 60)
    assert frames.shape == (60, 84, 84) and resets[0] and resets[30] and resets.sum() == 2
    report = step_model.check_parity(step, names, path, frames, resets,
                                     rounded_to=step_model.stored_state_dtypes(loaded.config))
    assert report.passed, report
    assert report.max_abs_q_difference < 1e-4 and report.steps == 60
    # the carried state too: the frame stack and the frozen embeddings' window, tensor by tensor
    assert set(report.max_abs_state_difference) == set(names) and len(names) >= 2
    assert report.state_mismatches == {name: 0 for name in names}
    # uint8 frames exact; float16-rounded embeddings at most one float16 step apart (ϑ's float32 sums
    # differ between TF and onnxruntime in the last bits); tf2onnx once dropped that rounding altogether
    assert report.max_abs_state_difference["frame_stack"] == 0
    assert report.max_abs_state_difference["embedding_window"] <= 2 ** -10  # one step of float16 below 2


def test_parity_fails_when_the_carried_state_drifts(pong_run, tmp_path):
    """A state the ONNX model carries differently fails the check, tensor by tensor: the step function
    below returns a frame stack off by one grey level; the ONNX model is the true one. (Found this way:
    tf2onnx had dropped the float16 rounding of the embeddings, invisible in Q at 1e-7.)"""
    import tensorflow as tf

    from rise_runtime import contract

    loaded = step_model.load_policy(pong_run)
    path = str(tmp_path / "pong.onnx")
    step, names = step_model.export_onnx(loaded, path)
    frames, resets = step_model.rollout_frames(loaded, 8)

    def drifting_step(frame, reset, *state):
        outputs = dict(step(frame, reset, *state))
        stack = contract.state_out(names[0])
        outputs[stack] = outputs[stack] + tf.ones_like(outputs[stack])
        return outputs
    drifting_step.input_signature = step.input_signature
    report = step_model.check_parity(drifting_step, names, path, frames, resets)
    assert report.max_abs_state_difference[names[0]] >= 1.0 and report.state_mismatches[names[0]] > 0
    assert not report.passed


def test_metadata_lets_a_runtime_configure_itself(pong_run, tmp_path):
    path = str(tmp_path / "pong.onnx")
    step_model.export_onnx(step_model.load_policy(pong_run), path)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(contract.REQUIRED_METADATA) <= set(meta)
    assert meta[contract.META_FORMAT_VERSION] == str(contract.FORMAT_VERSION)
    assert meta[contract.META_GAME] == "Pong" and meta[contract.META_WINDOW_LENGTH] == "6"
    assert json.loads(meta[contract.META_ACTION_MEANINGS])[:2] == ["NOOP", "FIRE"]
    assert json.loads(meta[contract.META_PREPROCESSING]) == {"frame_size": 84, "action_repeat": 4,
                                                             "max_pool_last_two": True, "interpolation": "area"}
    # Only the opsets the nodes use (tf2onnx also imports ai.onnx.ml, which no node calls).
    assert {entry.domain for entry in model.opset_import} == {node.domain for node in model.graph.node} | {""}
    assert "ai.onnx.ml" not in {entry.domain for entry in model.opset_import}
    layout = contract.decode_state_layout(meta[contract.META_STATE])
    inputs = [i.name for i in model.graph.input]
    assert inputs[:2] == [contract.FRAME, contract.RESET]
    assert inputs[2:] == [contract.state_in(entry["name"]) for entry in layout]
    # Dynamic batch: three games at once, from zero state built from the metadata alone.
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {contract.FRAME: np.zeros((3, 84, 84), np.uint8), contract.RESET: np.ones(3, bool)}
    feeds.update({contract.state_in(e["name"]): np.zeros([3] + e["shape"], e["dtype"]) for e in layout})
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    assert outputs[contract.Q_VALUES].shape == (3, 6) and outputs[contract.ACTION].dtype == np.int32
    # One named batch axis on every input and output; a description and the checkpoint's frame count.
    for value in list(model.graph.input) + list(model.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == contract.BATCH_AXIS, value.name
    assert "RISE step model" in model.doc_string and "Pong" in model.doc_string
    assert model.model_version == int(meta[contract.META_FRAMES_TRAINED]) > 0


# The full-recurrent model and rise-btr on Pong (BTR's full Impala body) take ~25 s each: slow suite,
# for make test's 15-minute budget.
@pytest.mark.parametrize("algo, game, extra", [("dqn", "MemoryCorridor", ()), ("rise-btr", "MemoryCorridor", ()),
                                               ("rise-dqn", "MemoryCorridor", ("--fusion", "concat")),
                                               pytest.param("r2d2-lite", "MemoryCorridor", (), marks=pytest.mark.slow),
                                               pytest.param("rise-btr", "Pong", (), marks=pytest.mark.slow)])
def test_base_full_recurrent_and_btr_models_export_with_parity(algo, game, extra, tmp_path):
    # rise-btr on Pong has BTR's own body (spectral-norm Impala x2, noisy IQN dueling streams with
    # 512 units); the exported model is the deterministic network (no noise, quantile-midpoint taus).
    # --fusion concat: ψ's output joins φ's features (the memory tasks' fastest learner, results/segments.md).
    run = tiny_run(tmp_path / algo, algo, game, extra)
    loaded = step_model.load_policy(run)
    path = str(tmp_path / "model.onnx")
    step, names = step_model.export_onnx(loaded, path)
    frames, resets = step_model.rollout_frames(loaded, 24)
    assert step_model.check_parity(step, names, path, frames, resets,
                                   rounded_to=step_model.stored_state_dtypes(loaded.config)).passed


def test_cli_writes_only_a_checked_model_and_reports_bad_input(pong_run, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert export_main([pong_run, "--out", str(out), "--parity-steps", "20"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.onnx"]  # no candidate left behind
    assert "greedy-action mismatches: 0" in capsys.readouterr().out
    assert export_main([str(tmp_path / "missing"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "config.json is missing" in capsys.readouterr().err


def test_cli_refuses_bad_out_paths_and_missing_checkpoints_and_writes_nothing(pong_run, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir.onnx").mkdir()
    cases = {
        str(tmp_path / "a_dir.onnx"): "is a directory",
        str(tmp_path / "a_file" / "m.onnx"): "which is a file",
        str(tmp_path / "model.txt"): "must name an .onnx file",
        "/proc/rise-export-test/model.onnx": "/proc does not accept new files",  # unwritable, even for root
    }
    for out, message in cases.items():
        assert export_main([pong_run, "--out", out]) == 2
        assert message in capsys.readouterr().err
    missing = str(tmp_path / "ckpt-000000999999")
    assert export_main([pong_run, "--out", str(tmp_path / "m.onnx"), "--checkpoint", missing]) == 2
    error = capsys.readouterr().err
    assert "does not exist" in error and "ckpt-" in error and "Delete" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir.onnx", "a_file"]
    # --saved-model onto an existing file: refused before any work (no .onnx written)
    assert export_main([pong_run, "--out", str(tmp_path / "m.onnx"), "--saved-model", str(tmp_path / "a_file")]) == 2
    error = capsys.readouterr().err
    assert "--saved-model" in error and "is a file" in error and "nothing written" in error
    assert export_main([str(tmp_path / "a_file"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "is not a run directory (it is a file)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir.onnx", "a_file"]


def test_policy_saver_savedmodel_acts_like_the_tf_policy(pong_run, tmp_path):
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts

    loaded = step_model.load_policy(pong_run)
    directory = str(tmp_path / "saved")
    step_model.export_saved_model(loaded, directory)
    restored = tf.saved_model.load(directory)
    frames, resets = step_model.rollout_frames(loaded, 20)
    live_state, saved_state = loaded.policy.get_initial_state(1), restored.get_initial_state(1)
    for frame, reset in zip(frames, resets):
        step = ts.TimeStep(tf.constant([0 if reset else 1]), tf.zeros([1]), tf.ones([1]), tf.constant(frame[None]))
        live, saved = loaded.policy.action(step, live_state), restored.action(step, saved_state)
        assert int(live.action[0]) == int(saved.action[0])
        np.testing.assert_allclose(live.state["embedding_window"], saved.state["embedding_window"], atol=1e-6)
        live_state, saved_state = live.state, saved.state
