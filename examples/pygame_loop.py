"""A game loop that hands an exported RISE policy its screens the way an engine does, using only the
runtime (rise_runtime: numpy + onnxruntime) and pygame.

    python examples/pygame_loop.py memory.onnx --episodes 20            # a window, 60 frames/s
    SDL_VIDEODRIVER=dummy python examples/pygame_loop.py memory.onnx --fps 0   # headless, flat out

The "engine" here is pygame drawing a memory task (rise_runtime's MemoryCorridor, the task the model
names in its metadata) scaled up 4x into a window surface. Each game frame the loop:
1. reads the window back as an engine would: `pygame.surfarray.pixels3d` is column-major [W, H, 3],
   so it is transposed to the [H, W, 3] rows the contract wants (a view, copied once because the next
   frame is drawn over it);
2. every `action_repeat` frames (the model's metadata: 1 for the memory tasks, 4 for Atari) asks the
   policy for an action from the last two screens, and holds that action in between;
3. ticks the clock at --fps, and reports the step latency against the frame budget.
The policy never sees the env's own frames: only what is on the screen. Scaled 4x with nearest
pixels and shrunk back by the contract's area averaging, they are the training frames exactly
(--check asserts it on every step).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

SCALE = 4


def screen_rows(surface) -> np.ndarray:
    """The window as [H, W, 3] RGB rows: pygame's pixel arrays are indexed [x, y]."""
    import pygame

    return pygame.surfarray.pixels3d(surface).transpose(1, 0, 2)


def run(model_path: str, episodes: int, fps: float, check: bool, seed: int = 0) -> dict:
    import pygame

    from rise_runtime.envs.registry import make_env
    from rise_runtime.runner import Policy

    policy = Policy.load(model_path)
    env_info = policy.env_description or {}
    if env_info.get("kind") != "memory":
        raise SystemExit(f"this example draws the memory tasks; {model_path} was trained on "
                         f"{env_info.get('kind', '?')} {env_info.get('name', policy.game)}")
    size = policy.preprocessing.frame_size
    env = make_env(env_info, preprocessing=policy.preprocessing, seed=seed)  # the task the model names
    pygame.display.init()
    window = pygame.display.set_mode((size * SCALE, size * SCALE))
    pygame.display.set_caption(f"RISE: {policy.game}")
    clock = pygame.time.Clock()

    def draw(frame):  # the engine renders the game: gray frame -> RGB surface, scaled up
        rgb = np.repeat(frame[:, :, None], 3, axis=2)
        small = pygame.surfarray.make_surface(rgb.transpose(1, 0, 2))
        pygame.transform.scale(small, window.get_size(), window)
        pygame.display.flip()

    repeat = policy.preprocessing.action_repeat
    latencies, successes, played, frames_shown = [], 0, 0, 0
    started = time.perf_counter()
    while played < episodes:
        policy.reset(1)
        frame, _ = env.reset()
        draw(frame)
        previous, action, done, tick = None, 0, False, 0
        while not done:
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    episodes = played
                    done = True
            if done:
                break
            screen = np.array(screen_rows(window))  # the read-back; a copy, as the next draw overwrites it
            if tick % repeat == 0:
                began = time.perf_counter()
                if check:
                    assert np.array_equal(policy.preprocess(screen, previous), frame), "screen != training frame"
                action = policy.act(screen, previous)
                latencies.append(time.perf_counter() - began)
            previous = screen
            frame, _, done, _, info = env.step(action)
            tick += 1
            draw(frame)
            frames_shown += 1
            if fps > 0:
                clock.tick(fps)
        if done and "success" in info:
            played += 1
            successes += bool(info["success"])
    elapsed = time.perf_counter() - started
    pygame.display.quit()
    ms = 1000 * np.asarray(latencies) if latencies else np.zeros(1)
    return {"episodes": played, "success_rate": successes / max(played, 1), "frames": frames_shown,
            "frames_per_s": frames_shown / elapsed, "act_p50_ms": float(np.percentile(ms, 50)),
            "act_p99_ms": float(np.percentile(ms, 99)),
            "frame_budget_ms": 1000 / fps if fps > 0 else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", help="an exported memory-task model (rise-export RUN_DIR --out MODEL.onnx)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes to play")
    parser.add_argument("--fps", type=float, default=60.0, help="frames per second (0: as fast as it runs)")
    parser.add_argument("--check", action="store_true", help="assert the screen read back is the training frame")
    parser.add_argument("--seed", type=int, default=0, help="the task's seed")
    args = parser.parse_args(argv)
    if not os.path.exists(args.model):
        parser.error(f"no model at {args.model}; export one with rise-export RUN_DIR --out {args.model}")
    result = run(args.model, args.episodes, args.fps, args.check, args.seed)
    budget = f" (frame budget {result['frame_budget_ms']:.1f} ms)" if result["frame_budget_ms"] else ""
    print(f"{result['episodes']} episodes, success {result['success_rate']:.0%}; {result['frames']} frames at "
          f"{result['frames_per_s']:.0f}/s; policy.act p50 {result['act_p50_ms']:.2f} ms, p99 "
          f"{result['act_p99_ms']:.2f} ms{budget}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
