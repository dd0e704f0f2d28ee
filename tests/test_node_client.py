"""The JavaScript client (clients/node, onnxruntime-node) against the Python runner on the same raw
screens: the same preprocessed frames, bit for bit, and the same Q-values (max |ΔQ| <= 1e-5).
Runs when `node` is on PATH; installs the client's npm packages first if they are missing
(`npm ci --ignore-scripts`: onnxruntime-node's install script would fetch a CUDA provider)."""
import base64
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from rise_runtime.envs.atari import AtariEnv
from rise_runtime.runner import Policy

from conftest import atari_settings  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "clients", "node")

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture(scope="module")
def node_client():
    if not os.path.isdir(os.path.join(CLIENT, "node_modules", "onnxruntime-node")):
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=CLIENT, check=True,
                       capture_output=True, timeout=900)
    return os.path.join(CLIENT, "play.js")


def _run_node(node_client, model, screens_path, *extra):
    result = subprocess.run(["node", node_client, model, "--screens", screens_path, "--json", *extra],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _atari_pairs(steps):
    env = AtariEnv("Pong", atari_settings(), seed=5)
    env.reset()
    rng = np.random.default_rng(1)
    pairs = []
    for _ in range(steps):
        pairs.append(np.stack([env.last_screen, env.previous_screen]))
        env.step(int(rng.integers(env.action_space.n)))
    env.close()
    return np.stack(pairs)


@pytest.mark.parametrize("source", ["atari", "random_168x168", "random_250x97"])
def test_node_client_matches_the_python_runner(node_client, pong_onnx, tmp_path, source):
    if source == "atari":
        screens = _atari_pairs(40)  # [T, 2, 210, 160, 3]: last and previous screen of each step
    else:
        height, width = map(int, source.split("_")[1].split("x"))
        screens = np.random.default_rng(7).integers(0, 256, (12, height, width, 3), dtype=np.uint8)
    path = str(tmp_path / "screens.npy")
    np.save(path, screens)
    steps = _run_node(node_client, pong_onnx, path)
    assert len(steps) == len(screens)
    runner = Policy.load(pong_onnx)
    worst = 0.0
    for step, entry in zip(steps, screens):
        last, previous = (entry[0], entry[1]) if entry.ndim == 4 else (entry, None)
        frame = np.frombuffer(base64.b64decode(step["frame"]), np.uint8).reshape(84, 84)
        np.testing.assert_array_equal(frame, runner.preprocess(last, previous))  # the contract's pipeline in JS
        action = runner.act(last, previous)
        worst = max(worst, float(np.abs(np.asarray(step["q_values"]) - runner.q_values[0]).max()))
        assert step["action"] == action
    print(f"node vs python on {source}: max |dQ| = {worst:.2e} over {len(steps)} steps")
    assert worst <= 1e-5, worst


def test_node_client_refuses_a_file_that_is_not_a_rise_model(node_client, tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"\x08\x07")  # a valid protobuf varint field, no RISE metadata
    result = subprocess.run(["node", node_client, str(bogus)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "not a RISE step model" in result.stderr


def _in_layout(rgb, layout, bottom_up):
    """RGB screens [..., H, W, 3] as an engine would hand them over (alpha 255, rows flipped)."""
    out = {"rgb": rgb, "bgr": rgb[..., ::-1],
           "rgba": np.concatenate([rgb, np.full(rgb.shape[:-1] + (1,), 255, np.uint8)], axis=-1),
           "bgra": np.concatenate([rgb[..., ::-1], np.full(rgb.shape[:-1] + (1,), 255, np.uint8)], axis=-1)}[layout]
    return np.ascontiguousarray(out[..., ::-1, :, :] if bottom_up else out)


@pytest.mark.parametrize("layout, bottom_up", [("bgra", True), ("rgba", True), ("bgr", False), ("gray", False)])
def test_node_client_takes_engine_layouts_and_episode_starts_bit_exact(node_client, pong_onnx, tmp_path, layout,
                                                                       bottom_up):
    """Screens in a declared layout (BGRA/RGBA bottom-up as Direct3D/OpenGL read back, gray [T, H, W]) and
    episode starts: the same frames and actions as Python's runner on the RGB screens with the same resets."""
    pairs = _atari_pairs(16)
    starts = np.zeros(len(pairs), bool)
    starts[[0, 9]] = True
    if layout == "gray":
        from rise_runtime.preprocessing import to_gray

        given = np.stack([[to_gray(s) for s in pair] for pair in pairs])  # [T, 2, H, W]
        reference = given
    else:
        given, reference = _in_layout(pairs, layout, bottom_up), pairs
    screens_path, starts_path = str(tmp_path / "screens.npy"), str(tmp_path / "starts.npy")
    np.save(screens_path, given)
    np.save(starts_path, starts)
    extra = ["--layout", layout, "--episode-starts", starts_path] + (["--bottom-up"] if bottom_up else [])
    steps = _run_node(node_client, pong_onnx, screens_path, *extra)
    runner = Policy.load(pong_onnx)
    for t, (step, pair) in enumerate(zip(steps, reference)):
        if starts[t]:
            runner.reset(1)
        frame = np.frombuffer(base64.b64decode(step["frame"]), np.uint8).reshape(84, 84)
        np.testing.assert_array_equal(frame, runner.preprocess(pair[0], pair[1], layout="gray" if layout == "gray"
                                                                else "rgb"))
        assert step["action"] == runner.act(pair[0], pair[1], layout="gray" if layout == "gray" else "rgb")
        np.testing.assert_allclose(step["q_values"], runner.q_values[0], atol=1e-5)


def test_node_client_steps_many_games_in_one_call_like_act_batch(node_client, pong_onnx, tmp_path):
    """--batch: B games per model call, each with its own memory and its own episode starts, equal to
    Policy.act_batch on the same screens (actions exact, |dQ| <= 1e-5)."""
    rng = np.random.default_rng(3)
    screens = rng.integers(0, 256, (10, 3, 210, 160, 3), dtype=np.uint8)  # [T, B, H, W, C]
    starts = np.zeros((10, 3), bool)
    starts[4, 1] = starts[7, 2] = True  # games 1 and 2 start new episodes mid-way
    screens_path, starts_path = str(tmp_path / "screens.npy"), str(tmp_path / "starts.npy")
    np.save(screens_path, screens)
    np.save(starts_path, starts)
    steps = _run_node(node_client, pong_onnx, screens_path, "--batch", "--episode-starts", starts_path)
    runner = Policy.load(pong_onnx)
    for t, step in enumerate(steps):
        actions = runner.act_batch(list(screens[t]), new_episode=starts[t])
        assert step["actions"] == actions.tolist()
        np.testing.assert_allclose(step["q_values"], runner.q_values, atol=1e-5)
    assert len(steps) == 10


@pytest.mark.parametrize("shape", [(60, 60), (7, 9), (50, 120), (83, 85), (100, 300), (210, 160)])
def test_node_client_resizes_small_screens_and_linear_as_python_does(node_client, tmp_path, shape):
    """The fixed-point bilinear of the contract (linear, and area on screens smaller than the frame)
    in JavaScript equals the runtime's numpy, pixel for pixel."""
    from rise_runtime.preprocessing import PreprocessingConfig, resize

    gray = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "gray.bin"
    path.write_bytes(gray.tobytes())
    script = ("const core = require(process.argv[1]); const fs = require('fs');"
              "const gray = new Uint8Array(fs.readFileSync(process.argv[2]));"
              "const [h, w] = [Number(process.argv[3]), Number(process.argv[4])];"
              "for (const mode of ['area', 'linear', 'nearest']) "
              "process.stdout.write(Buffer.from(core.resize(gray, h, w, 84, mode)).toString('base64') + '\\n');")
    result = subprocess.run(["node", "-e", script, os.path.join(CLIENT, "rise-core.js"), str(path), str(shape[0]),
                             str(shape[1])], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for line, mode in zip(result.stdout.split(), ("area", "linear", "nearest")):
        frame = np.frombuffer(base64.b64decode(line), np.uint8).reshape(84, 84)
        np.testing.assert_array_equal(frame, resize(gray, PreprocessingConfig(interpolation=mode)), err_msg=mode)
