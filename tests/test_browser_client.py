"""The browser client (clients/web: onnxruntime-web WASM + clients/node/rise-core.js) in a real
headless Chromium (Debian's; driven by playwright-core, which downloads nothing), served by a
static file server: no inference server.

- the page's MemoryCorridor draws Python's frames pixel for pixel (no browser needed);
- the page loads a memory-task model, plays it at frame rate on its canvas, and evaluates it;
- its preprocessing equals Python's bit for bit, its Q on the same frames equals Python's to float32
  rounding (WASM's kernels are not the native CPU's) with the same greedy actions;
- slow: a trained model reaches the same success rate in the page as in Python.
"""
import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

from rise_runtime.envs.memory_task import MEMORY_TASKS, MemoryCorridorEnv
from rise_runtime.runner import Policy

CLIENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "clients")
WEB = os.path.join(CLIENTS, "web")
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason=f"no Chromium at {CHROMIUM} (make browser installs Debian's)")


@pytest.fixture(scope="module")
def web_client():
    if not os.path.isdir(os.path.join(WEB, "node_modules", "onnxruntime-web")):
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=WEB, check=True,
                       capture_output=True, timeout=900)
    return WEB


class _StaticServer:
    """clients/ as the site root (the page loads ../node/rise-core.js), models under /models/."""

    def __init__(self, models_dir):
        class Handler(http.server.SimpleHTTPRequestHandler):
            extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map,
                                  **{".wasm": "application/wasm", ".mjs": "text/javascript"})

            def translate_path(self, path):
                if path.startswith("/models/"):
                    return os.path.join(models_dir, os.path.basename(path.split("?")[0]))
                return super().translate_path(path)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=CLIENTS))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, model_name, **params):
        query = "&".join([f"model=/models/{model_name}"] + [f"{k}={v}" for k, v in params.items()])
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/web/index.html?{query}"

    def close(self):
        self.httpd.shutdown()


def _drive(url, calls, tmp_path):
    calls_path = tmp_path / "calls.json"
    calls_path.write_text(json.dumps(calls))
    result = subprocess.run(["node", os.path.join(WEB, "drive.js"), url, str(calls_path), "--chromium", CHROMIUM],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["console_errors"] == [], out["console_errors"]
    return out


def _train_memory_model(directory, frames, algo="rise-dqn", extra=()):
    from rise_tf.export.cli import main as export_main
    from rise_tf.train.cli import main as train_main

    run_dir, model = os.path.join(directory, "run"), os.path.join(directory, "memory.onnx")
    assert train_main(["--game", "MemoryCorridor", "--algo", algo, "--frames", str(frames), "--run-dir", run_dir,
                       "--no-progress", *extra]) == 0
    assert export_main([run_dir, "--out", model] + (["--checkpoint", "best"] if "--stop-at-success" in extra
                                                     else [])) == 0
    return model


@pytest.mark.parametrize("task", ["MemoryCorridor", "MemoryCorridorHard", "MemoryCorridorCues4"])
def test_the_pages_memory_task_draws_pythons_frames(web_client, task, tmp_path):
    settings = MEMORY_TASKS[task]
    env = MemoryCorridorEnv(corridor_length=settings.corridor_length, num_cues=settings.num_cues,
                            cue_steps=settings.cue_steps, distractor_prob=0.0, frame_size=84)
    script = ("const M = require(process.argv[1]); const s = JSON.parse(process.argv[2]);"
              "const env = new M(s, 84, 0); const out = [];"
              "for (let cue = 0; cue < s.num_cues; cue++) { env.cue = cue; env.distractor = -1;"
              "  for (let t = 0; t < env.episodeSteps; t++) { env.t = t; out.push(Buffer.from(env.frame())); } }"
              "env.cue = 0; env.t = 3; env.distractor = 1; out.push(Buffer.from(env.frame()));"
              "process.stdout.write(Buffer.concat(out).toString('base64'));")
    result = subprocess.run(["node", "-e", script, os.path.join(WEB, "memory-corridor.js"),
                             json.dumps({"corridor_length": settings.corridor_length, "num_cues": settings.num_cues,
                                         "cue_steps": settings.cue_steps, "distractor_prob": 0.0})],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    frames = np.frombuffer(base64.b64decode(result.stdout), np.uint8).reshape(-1, 84, 84)
    expected = np.concatenate([env.frames_with_cue(cue) for cue in range(settings.num_cues)])
    np.testing.assert_array_equal(frames[:-1], expected)
    env._cue, env._t, env._distractor = 0, 3, 1  # a corridor frame with a distractor band
    np.testing.assert_array_equal(frames[-1], env._frame())


@needs_chromium
def test_the_page_plays_at_frame_rate_and_matches_python_on_the_same_frames(web_client, memory_onnx, pong_onnx,
                                                                            tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(memory_onnx, models / "memory.onnx")
    shutil.copy(pong_onnx, models / "pong.onnx")
    # The same episodes as Python plays them, and raw screens of two sizes for the preprocessing.
    env = MemoryCorridorEnv(corridor_length=8, num_cues=2, cue_steps=1, distractor_prob=0.0, frame_size=84, seed=3)
    rng = np.random.default_rng(0)
    frames, resets = [], []
    for _ in range(5):
        frame, _ = env.reset()
        done, first = False, True
        while not done:
            frames.append(frame)
            resets.append(first)
            first = False
            frame, _, done, _, _ = env.step(int(rng.integers(2)))
    frames = np.stack(frames)
    screens = {shape: rng.integers(0, 256, (4,) + shape, dtype=np.uint8) for shape in ((210, 160, 3), (60, 60, 3))}
    server = _StaticServer(str(models))
    try:
        calls = [{"call": "watch", "seconds": 2},
                 {"call": "qOnFrames", "args": [base64.b64encode(frames.tobytes()).decode(), resets]},
                 {"call": "evaluate", "args": [20, 1]}]
        calls += [{"call": "preprocessScreens", "args": [base64.b64encode(s.tobytes()).decode(), *shape]}
                  for shape, s in screens.items()]
        out = _drive(server.url("memory.onnx"), calls, tmp_path)
        # a missing model is named with how to export one; an Atari model is refused with the reason
        (tmp_path / "evaluate.json").write_text(json.dumps([{"call": "evaluate", "args": [1, 1]}]))
        refused = [subprocess.run(["node", os.path.join(WEB, "drive.js"), server.url(name), str(tmp_path / "evaluate.json"),
                                   "--chromium", CHROMIUM], capture_output=True, text=True, timeout=300)
                   for name in ("missing.onnx", "pong.onnx")]
    finally:
        server.close()
    assert out["ready"]["game"] == "MemoryCorridor" and out["ready"]["actions"] == ["CHOOSE_0", "CHOOSE_1"]
    watched, q_page, evaluation = out["results"][:3]
    # one agent step per animation frame: tens of steps per second even on a busy 2-core machine
    assert watched["steps"] >= 20, watched
    print(f"page: {watched['steps'] / watched['seconds']:.0f} agent steps/s while drawing")
    assert evaluation["episodes"] == 20 and 0 <= evaluation["successes"] <= 20
    policy = Policy.load(memory_onnx)
    q_python = []
    for frame, reset in zip(frames, resets):
        action = policy.step_frames(frame[None], [reset])[0]
        q_python.append(policy.q_values[0].copy())
        assert int(np.argmax(q_page[len(q_python) - 1])) == action
    worst = float(np.abs(np.asarray(q_page, np.float32) - np.asarray(q_python)).max())
    print(f"page (onnxruntime-web, WASM) vs Python (onnxruntime, CPU): max |dQ| = {worst:.2e} over {len(frames)} frames")
    assert worst <= 1e-6
    for (shape, raw), encoded in zip(screens.items(), out["results"][3:]):
        page_frames = np.frombuffer(base64.b64decode(encoded), np.uint8).reshape(-1, 84, 84)
        np.testing.assert_array_equal(page_frames, np.stack([policy.preprocess(s) for s in raw]))
    missing, atari = refused
    assert missing.returncode != 0 and "no model at /models/missing.onnx (HTTP 404): export one with rise-export" \
        in missing.stderr
    assert atari.returncode != 0 and "this page plays the memory tasks" in atari.stderr


@needs_chromium
@pytest.mark.slow  # trains MemoryCorridor to success first (~1-2 min)
def test_a_trained_agent_reaches_its_success_rate_in_the_page(web_client, tmp_path):
    model = _train_memory_model(str(tmp_path), 20_000, algo="rise-btr",
                                extra=("--eval-every-frames", "2000", "--stop-at-success", "0.95"))
    policy = Policy.load(model)
    env = MemoryCorridorEnv(corridor_length=8, num_cues=2, cue_steps=1, distractor_prob=0.0, frame_size=84, seed=7)
    episodes, python_successes = 200, 0
    for _ in range(episodes):
        policy.reset(1)
        frame, _ = env.reset()
        done = False
        while not done:
            frame, _, done, _, info = env.step(int(policy.step_frames(frame[None])[0]))
        python_successes += bool(info.get("success"))
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(model, models / "memory.onnx")
    server = _StaticServer(str(models))
    try:
        out = _drive(server.url("memory.onnx", autoplay=0), [{"call": "evaluate", "args": [episodes, 1]}], tmp_path)
    finally:
        server.close()
    page = out["results"][0]["success_rate"]
    print(f"success over {episodes} episodes: Python {python_successes / episodes:.3f}, page {page:.3f}")
    assert python_successes / episodes >= 0.9 and abs(page - python_successes / episodes) <= 0.05
