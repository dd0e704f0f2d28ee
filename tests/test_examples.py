"""examples/: each runs as its docstring says."""
import os
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def test_the_pygame_game_loop_reads_the_window_and_feeds_the_policy_the_training_frames(memory_onnx):
    """Headless pygame: the window read back column-major and transposed, scaled 4x and shrunk by the
    contract, is the training frame on every step (--check), at the model's action repeat."""
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYGAME_HIDE_SUPPORT_PROMPT="1")
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, "pygame_loop.py"), memory_onnx, "--episodes", "6",
                             "--fps", "0", "--check"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("6 episodes, success ") and "60 frames at" in result.stdout  # 10 steps each
    missing = subprocess.run([sys.executable, os.path.join(EXAMPLES, "pygame_loop.py"), "/no/such.onnx"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert missing.returncode == 2 and "export one with rise-export" in missing.stderr
