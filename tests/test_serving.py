"""The TensorFlow-free runner: imports without TF, matches training's preprocessing and the TF
policy on real Atari screens, keeps per-game memory, and rejects bad models and frames clearly."""
import http.client
import json
import signal
import subprocess
import sys

import numpy as np
import onnx
import pytest
import tensorflow as tf

from rise_runtime.envs.atari import AtariEnv
from rise_runtime import contract
from rise_tf.export import step_model
from rise_runtime.runner import ModelError, Policy

from conftest import atari_settings  # noqa: E402


def test_runtime_imports_and_acts_with_tensorflow_and_opencv_blocked(pong_onnx):
    code = (
        "import sys\n"
        "for name in ('tensorflow', 'tf_agents', 'tensorflow_probability', 'cv2'):\n"
        "    sys.modules[name] = None  # any import of them now raises ImportError (no OpenCV either)\n"
        "import numpy as np\n"
        "from rise_runtime.runner import Policy\n"
        "import rise_runtime.play, rise_runtime.server  # the CLIs too\n"
        f"policy = Policy.load({pong_onnx!r})\n"
        "action = policy.act(np.zeros((210, 160, 3), np.uint8))\n"
        "loaded = [m for m, v in sys.modules.items() if v is not None and m.split('.')[0] in "
        "('tensorflow', 'tf_agents', 'keras')]\n"
        "print('ACTION', action, 'TF-MODULES', loaded)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "TF-MODULES []" in result.stdout and "ACTION" in result.stdout


def test_runner_matches_training_preprocessing_and_the_tf_policy_on_real_screens(pong_run, pong_onnx):
    loaded = step_model.load_policy(pong_run)
    step, names, _ = step_model.make_step_function(loaded)
    runner = Policy.load(pong_onnx)
    env = AtariEnv("Pong", atari_settings(), seed=7)
    frame, _ = env.reset()
    state = [np.zeros([1] + list(s.shape[1:]), s.dtype.as_numpy_dtype) for s in step.input_signature[2:]]
    for t in range(40):
        # Same raw screens in, same frame out: the one preprocessing definition is shared.
        np.testing.assert_array_equal(runner.preprocess(env.last_screen, env.previous_screen), frame)
        action = runner.act(env.last_screen, env.previous_screen)
        tf_out = step(tf.constant(frame[None]), tf.constant([t == 0]), *[tf.constant(s) for s in state])
        state = [tf_out[contract.state_out(n)].numpy() for n in names]
        np.testing.assert_allclose(runner.q_values, tf_out[contract.Q_VALUES].numpy(), atol=1e-4)
        assert action == int(tf_out[contract.ACTION].numpy()[0])
        frame, *_ = env.step(action)
    env.close()


def test_batch_act_keeps_each_games_memory_separate(pong_onnx):
    policy = Policy.load(pong_onnx)
    rng = np.random.default_rng(0)
    screens = [rng.integers(0, 256, (210, 160, 3), dtype=np.uint8) for _ in range(3)]
    actions = policy.act_batch(screens)
    assert actions.shape == (3,) and set(actions.tolist()) <= set(range(policy.num_actions))
    first_q = policy.q_values.copy()
    policy.act_batch(screens)  # the same screens again: memory has grown, so Q may differ...
    single = Policy.load(pong_onnx)
    single.act(screens[1])
    np.testing.assert_allclose(single.q_values[0], first_q[1], atol=1e-5)  # ...but game 1 alone = lane 1
    policy.act_batch(screens, new_episode=[False, True, False])
    np.testing.assert_allclose(policy.q_values[1], first_q[1], atol=1e-5)  # wiped: as on its first frame


def test_metadata_configures_the_runner(pong_onnx):
    policy = Policy.load(pong_onnx, threads=2)
    assert policy.game == "Pong" and policy.action_meanings[0] == "NOOP"
    assert policy.preprocessing.frame_size == 84 and policy.preprocessing.action_repeat == 4
    assert "CPUExecutionProvider" in policy.providers


def test_bad_models_and_frames_get_clear_errors(pong_onnx, tmp_path):
    with pytest.raises(FileNotFoundError, match="rise-export"):
        Policy.load(str(tmp_path / "missing.onnx"))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00not onnx at all")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        Policy.load(str(corrupt))
    # A valid ONNX model that is not a RISE step model.
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    graph = onnx.helper.make_graph([node], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(onnx.helper.make_model(graph), str(foreign))
    with pytest.raises(ModelError, match="not a RISE step model"):
        Policy.load(str(foreign))
    # A RISE model from a future format.
    model = onnx.load(pong_onnx)
    for prop in model.metadata_props:
        if prop.key == contract.META_FORMAT_VERSION:
            prop.value = "99"
    future = tmp_path / "future.onnx"
    onnx.save(model, str(future))
    with pytest.raises(ModelError, match="format 99"):
        Policy.load(str(future))
    # RISE metadata on a graph that does not match it: the missing tensor is named.
    model = onnx.load(pong_onnx)
    state = contract.state_out(contract.decode_state_layout(
        {p.key: p.value for p in model.metadata_props}[contract.META_STATE])[0]["name"])
    kept = [output for output in model.graph.output if output.name != state]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    wrong = tmp_path / "wrong_graph.onnx"
    onnx.save(model, str(wrong))
    with pytest.raises(ModelError, match=f"graph does not match.*missing.*{state}"):
        Policy.load(str(wrong))
    policy = Policy.load(pong_onnx)
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        policy.act(np.zeros((210, 160, 2), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        policy.act(np.zeros((210, 160, 3), np.float32))
    with pytest.raises(ValueError, match="device"):
        Policy.load(pong_onnx, device="tpu")


def test_the_runtime_installs_alone_in_a_fresh_venv_and_acts(pong_onnx, tmp_path):
    """The game developer's install: `pip install ./serving` (from the package index), nothing heavy,
    `pip check` clean, and an exported model acts with TensorFlow and OpenCV blocked."""
    from benchmarks import runtime_install

    venv = str(tmp_path / "rt")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    runtime_install._pip(venv, "install", runtime_install.SERVING)
    runtime_install._pip(venv, "check")
    python = f"{venv}/bin/python"
    listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            check=True).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert {"numpy", "onnxruntime", "rise-runtime"} <= installed
    assert not installed & {"tensorflow", "opencv-python-headless", "opencv-python", "gymnasium", "tf-agents"}
    smoke = subprocess.run([python, "-c", runtime_install.SMOKE, pong_onnx], capture_output=True, text=True,
                           timeout=300)
    assert smoke.returncode == 0, smoke.stderr
    # Same Q-values as this (training) environment's runner on the same screens.
    result = json.loads(smoke.stdout.strip().splitlines()[-1])
    policy = Policy.load(pong_onnx)
    rng = np.random.default_rng(0)
    for _ in range(5):
        policy.act(rng.integers(0, 256, (210, 160, 3), dtype=np.uint8))
    np.testing.assert_allclose(np.array(result["q"]), policy.q_values, atol=1e-5)
    play = subprocess.run([f"{venv}/bin/rise-play", pong_onnx], capture_output=True, text=True, timeout=120)
    assert play.returncode == 2 and "rise-runtime[play]" in play.stderr  # the missing extra is named
    serve = subprocess.run([f"{venv}/bin/rise-serve", pong_onnx], capture_output=True, text=True, timeout=120)
    assert serve.returncode == 2 and "rise-runtime[server]" in serve.stderr
    # The server extra resolves there too (the latest Starlette and uvicorn, unlike the training venv's):
    # serve one step, compare it with this environment's runner, stop with SIGTERM.
    runtime_install._pip(venv, "install", f"{runtime_install.SERVING}[server]")
    runtime_install._pip(venv, "check")
    server = subprocess.Popen([f"{venv}/bin/rise-serve", pong_onnx, "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline()
        port = int(banner.split("http://127.0.0.1:")[1].split()[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/sessions")
        session_id = json.loads(connection.getresponse().read())["session_id"]
        screen = np.random.default_rng(3).integers(0, 256, (210, 160, 3), dtype=np.uint8)
        connection.request("POST", f"/sessions/{session_id}/act", screen.tobytes(),
                           {"Content-Type": "application/octet-stream", "X-Frame-Shape": "210,160,3"})
        reply = json.loads(connection.getresponse().read())
        connection.close()
        fresh = Policy.load(pong_onnx)
        fresh.act(screen)
        np.testing.assert_allclose(reply["q_values"], fresh.q_values[0], atol=1e-5)
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=60)
    # Stopped gracefully; uvicorn then re-raises the signal, so the status may say SIGTERM.
    assert server.returncode in (0, -signal.SIGTERM) and "[rise-serve] stopped" in out


def test_the_gpu_build_stays_on_the_cuda_12_wheels_its_docs_name_and_cuda_errors_say_how_to_get_it(pong_onnx):
    """serving/setup.py's GPU build: onnxruntime-gpu from 1.27 on pulls the CUDA 13 wheels (BUILD.md
    has the resolution); the bound keeps it below. Asking for CUDA here (no GPU) names the build switch."""
    import os
    import re

    with open(os.path.join(os.path.dirname(__file__), "..", "serving", "setup.py")) as f:
        source = f.read()
    versions = re.search(r'ONNXRUNTIME_VERSIONS = "([^"]+)"', source).group(1)
    assert versions == ">=1.20,<1.27"
    assert 'GPU_ONNXRUNTIME = f"onnxruntime-gpu[cuda,cudnn]{ONNXRUNTIME_VERSIONS}"' in source
    assert 'f"onnxruntime{ONNXRUNTIME_VERSIONS}"' in source  # the CPU build: the same releases
    import onnxruntime

    assert (1, 20) <= tuple(int(p) for p in onnxruntime.__version__.split(".")[:2]) < (1, 27)
    with pytest.raises(ValueError, match=r"RISE_RUNTIME_GPU=1 pip install \./serving") as error:
        Policy.load(pong_onnx, device="cuda")
    assert "extra" not in str(error.value)


@pytest.mark.parametrize("layout", ["bgr", "rgba", "bgra"])
@pytest.mark.parametrize("bottom_up", [False, True])
def test_engine_screen_layouts_give_the_rgb_paths_frame_bit_for_bit(pong_onnx, layout, bottom_up):
    rng = np.random.default_rng(11)
    last, previous = (rng.integers(0, 256, (210, 160, 3), dtype=np.uint8) for _ in range(2))
    runner = Policy.load(pong_onnx)
    expected = runner.preprocess(last, previous)

    def as_layout(rgb):
        out = rgb[..., ::-1] if layout.startswith("bgr") else rgb
        if layout.endswith("a"):
            out = np.concatenate([out, rng.integers(0, 256, rgb.shape[:2] + (1,), dtype=np.uint8)], axis=-1)
        return np.ascontiguousarray(out[::-1] if bottom_up else out)

    np.testing.assert_array_equal(runner.preprocess(as_layout(last), as_layout(previous), layout=layout,
                                                    bottom_up=bottom_up), expected)
    with pytest.raises(ValueError, match=f"a {layout} screen is"):
        runner.act(last[..., :2].copy(), layout=layout)
    with pytest.raises(ValueError, match="unknown screen layout"):
        runner.act(last, layout="argb")
    gray = last.max(axis=2)
    np.testing.assert_array_equal(runner.preprocess(gray[..., None], layout="gray"), runner.preprocess(gray))
